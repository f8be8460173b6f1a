"""The ``pop`` label stays bounded whatever edges send: a POP code whose airport is known, at most
a fixed number of them per process; anything else is ``other``."""

from __future__ import annotations

import random

from monitor.metrics.catalogue import MAX_POP_SERIES, OTHER, _PopLabels, bounded_pop


def test_only_pop_codes_of_known_airports_are_label_values() -> None:
    assert bounded_pop("FRA56-P1") == "FRA56-P1"
    for hostile in ("QQQ5-C1", "fra56-p1", "FRA56-P1\n", "\x1b[31m", "", None, "X" * 10_000):
        assert bounded_pop(hostile) == OTHER, hostile


def test_ten_thousand_hostile_pops_make_at_most_the_cap_of_series() -> None:
    labels = _PopLabels(MAX_POP_SERIES)
    airports = ["FRA", "IAD", "NRT", "DUB", "SIN", "GRU", "SYD", "JFK", "LHR", "CDG"]
    rng = random.Random(11)
    exported = {labels.bounded(f"{rng.choice(airports)}{rng.randrange(1, 1000)}-"
                               f"{rng.choice('PCE')}{rng.randrange(1, 10)}")
                for _ in range(10_000)}
    assert len(exported - {OTHER}) == MAX_POP_SERIES
    assert OTHER in exported
    first = next(iter(exported - {OTHER}))
    assert labels.bounded(first) == first  # one already exported keeps its series
