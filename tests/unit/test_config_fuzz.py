"""Fuzzing the configuration loader: any text is a valid configuration or a ConfigError with
its problems, never another exception (issue: hostile input)."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, LoadedConfig, parse_config

VALID = (Path(__file__).parent.parent / "config" / "valid-minimal.yaml").read_text()
BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=30))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)


def _parses_or_explains(text: str) -> None:
    problems = []
    try:
        loaded: LoadedConfig | None = parse_config(text, "<fuzz>")
    except ConfigError as exc:
        loaded, problems = None, exc.problems
    if loaded is None:  # a ConfigError always says what is wrong
        assert problems
        assert all(str(problem) for problem in problems)


@BOUNDED
@given(st.text(max_size=400))
def test_any_text_is_a_config_or_a_config_error(text: str) -> None:
    _parses_or_explains(text)


@BOUNDED
@given(documents)
def test_any_yaml_document_is_a_config_or_a_config_error(document: object) -> None:
    _parses_or_explains(yaml.safe_dump(document))


@BOUNDED
@given(st.sampled_from(["service", "regions", "vantage_points", "probe", "serve", "cdn",
                        "ip_ranges", "tolerance", "alarms", "cloudwatch"]), documents)
def test_any_value_under_a_known_key_is_a_config_or_a_config_error(key: str,
                                                                   value: object) -> None:
    document = yaml.safe_load(VALID)
    document[key] = value
    _parses_or_explains(yaml.safe_dump(document))


@BOUNDED
@given(st.integers(min_value=1, max_value=400), st.sampled_from(["[", "{a: ", "- "]))
def test_deep_nesting_is_a_config_error(depth: int, opener: str) -> None:
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    _parses_or_explains(VALID + "probe: " + opener * depth + "1" + closer * depth + "\n")
