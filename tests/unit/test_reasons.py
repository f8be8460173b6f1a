"""One vocabulary of reasons: the probes' reasons are part of it, every reason is described once,
and README.md, docs/runbook.md and docs/metrics.md list every one of them."""

from __future__ import annotations

from pathlib import Path

import pytest

import probes.errors
from monitor.domain.reasons import REASONS, Reason, reason_of, reasons_table_markdown
from monitor.metrics import LABELS
from probes.cdn import HeaderProblem
from probes.errors import ProbeError, ProbeReason

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- generated from monitor/domain/reasons.py: python -m monitor.domain.reasons -->\n"
END = "<!-- end of generated table -->"


def test_every_probe_reason_is_a_reason_of_the_same_name() -> None:
    for probe_reason in ProbeReason:
        assert Reason[probe_reason.name] == probe_reason.value
        assert reason_of(probe_reason) is Reason[probe_reason.name]


def test_every_probe_error_class_has_a_probe_reason() -> None:
    classes = [c for c in vars(probes.errors).values()
               if isinstance(c, type) and issubclass(c, ProbeError)]
    assert len(classes) > 10
    for error_class in classes:
        assert isinstance(error_class.reason, ProbeReason), error_class


def test_every_reason_is_described_exactly_once() -> None:
    assert sorted(spec.reason for spec in REASONS) == sorted(Reason)
    for spec in REASONS:
        assert spec.meaning
        assert "|" not in spec.meaning


def test_a_reason_this_version_does_not_know_is_other() -> None:
    assert reason_of("some_future_reason") is Reason.OTHER
    assert reason_of("timeout") is Reason.TIMEOUT


@pytest.mark.parametrize("doc", ["README.md", "docs/runbook.md"])
def test_the_docs_carry_the_reason_table(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    table = text[text.index(BEGIN) + len(BEGIN):text.index(END, text.index(BEGIN))]
    assert table == reasons_table_markdown(), (
        f"{doc} is out of date: replace its reason table with `python -m monitor.domain.reasons`")


def test_the_metric_docs_list_every_reason_as_a_label_value() -> None:
    listed = LABELS["reason"].split(": ", 1)[1].split(", ")
    assert sorted(listed) == sorted(Reason)
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert f"| `reason` | {LABELS['reason']} |" in text


def test_header_problems_carry_probe_reasons() -> None:
    problem = HeaderProblem(ProbeReason.POP_MISSING, "no x-amz-cf-pop header")
    assert reason_of(problem.reason) is Reason.POP_MISSING


def test_aws_and_export_reasons_are_reasons() -> None:
    from monitor.aws.clients import aws_error_reasons
    from monitor.exporters.cloudwatch import DROP_REASONS

    assert set(aws_error_reasons()) <= set(Reason)
    assert set(DROP_REASONS) <= set(Reason)
