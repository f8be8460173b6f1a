"""A probe round: ``run_round`` (the one orchestration path), the baseline and pacing."""
