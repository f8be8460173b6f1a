"""The judging core: the result model, evidence, verdicts, attribution and one judge per path."""
