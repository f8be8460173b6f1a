"""A failing CloudWatch export shows on /metrics: failed PutMetricData requests by AWS error
reason and dropped datapoints by reason, counted into serve's snapshot and exposed by the same
collector as every other metric (before: only a log line and a CloudWatch metric that could not be
delivered either)."""

from __future__ import annotations

import re

import pytest
from botocore.stub import Stubber
from e2e.moto_server import MotoServer, moto_server  # noqa: F401 - the fixture
from prometheus_client import CollectorRegistry, generate_latest
from rounds import sample_round

from monitor.aws.clients import aws_error_reasons, cloudwatch_client
from monitor.cli.serve import _round_exporters
from monitor.config import Config, parse_config
from monitor.exporters.cloudwatch import CloudWatchPublisher
from monitor.exporters.prometheus import RoundCollector
from monitor.metrics import SnapshotStore

CONFIG = """
service: {origin_name: global-alb.example.com}
regions: {eu-west-1: {addresses: [192.0.2.10]}, us-east-1: {addresses: [192.0.2.20]}}
vantage_points: {eu-west-1: {resolver: 192.0.2.53}}
cloudwatch: {enabled: true, region: eu-west-1}
"""
REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")


def config() -> Config:
    return parse_config(CONFIG).config


def exposition(store: SnapshotStore) -> dict[str, float]:
    """The cloudwatch_* samples of a scrape: 'name{labels}' → value."""
    registry = CollectorRegistry()
    registry.register(RoundCollector(store.current))
    text = generate_latest(registry).decode()
    return {match.group(1): float(match.group(2))
            for match in re.finditer(r"^(routewatch_cloudwatch_\S+) (\S+)$", text, re.MULTILINE)}


def test_every_reason_is_exported_at_zero_before_anything_fails() -> None:
    store = SnapshotStore(config())
    CloudWatchPublisher(namespace="RouteWatch", regions=REGIONS,
                        client=cloudwatch_client("eu-west-1", endpoint_url="http://127.0.0.1:9"),
                        counters=store.count)
    samples = exposition(store)
    assert samples['routewatch_cloudwatch_dropped_datapoints_total{reason="buffer_full"}'] == 0
    assert samples['routewatch_cloudwatch_dropped_datapoints_total{reason="request_failed"}'] == 0
    for reason in aws_error_reasons():
        assert samples[f'routewatch_cloudwatch_failed_requests_total{{reason="{reason}"}}'] == 0
    assert "aws_access_denied" in aws_error_reasons()


def test_a_refused_request_and_an_unreachable_endpoint_are_counted_by_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = SnapshotStore(config())
    client = cloudwatch_client("eu-west-1", endpoint_url="http://127.0.0.1:9", max_attempts=1)
    publisher = CloudWatchPublisher(namespace="RouteWatch", regions=REGIONS, client=client,
                                    counters=store.count)
    publisher.export(sample_round())
    first = publisher.buffered
    with Stubber(client) as stub:  # the host's role lacks cloudwatch:PutMetricData
        stub.add_client_error("put_metric_data", service_error_code="AccessDenied",
                              service_message="not authorized to perform: "
                                              "cloudwatch:PutMetricData", http_status_code=403)
        assert publisher.flush().rejected == first
    publisher.export(sample_round())
    second = publisher.buffered + 1  # and the DroppedDatapoints report of the first failure
    assert publisher.flush().rejected == second  # a real botocore call to a closed port
    samples = exposition(store)
    failed = "routewatch_cloudwatch_failed_requests_total"
    assert samples[f'{failed}{{reason="aws_access_denied"}}'] == 1
    assert samples[f'{failed}{{reason="aws_unreachable"}}'] == 1
    assert samples[f'{failed}{{reason="aws_throttled"}}'] == 0
    assert samples['routewatch_cloudwatch_dropped_datapoints_total{reason="request_failed"}'] \
        == first + second
    assert publisher.failed_requests["aws_access_denied"] == 1


def test_a_full_buffer_is_counted_as_buffer_full() -> None:
    store = SnapshotStore(config())
    publisher = CloudWatchPublisher(
        namespace="RouteWatch", regions=REGIONS, buffer_limit=10, counters=store.count,
        client=cloudwatch_client("eu-west-1", endpoint_url="http://127.0.0.1:9"))
    queued = publisher.export(sample_round())
    assert queued > 10
    samples = exposition(store)
    assert samples['routewatch_cloudwatch_dropped_datapoints_total{reason="buffer_full"}'] \
        == queued - 10


def test_a_counter_of_another_kind_or_shape_is_refused() -> None:
    store = SnapshotStore(config())
    with pytest.raises(ValueError, match="cannot count"):
        store.count("round_success", ("eu-west-1",))
    with pytest.raises(ValueError, match="cannot count"):
        store.count("cloudwatch_failed_requests_total", ())


@pytest.mark.e2e
def test_serve_wires_the_publisher_to_its_snapshot(moto_server: MotoServer,  # noqa: F811
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    moto_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    store = SnapshotStore(config())
    [export], close = _round_exporters(config(), store)
    [vantage] = sample_round().vantage_points
    export(vantage)
    close()  # flushes into moto: nothing fails
    samples = exposition(store)
    assert samples['routewatch_cloudwatch_dropped_datapoints_total{reason="request_failed"}'] == 0
    assert sum(v for k, v in samples.items() if "failed_requests" in k) == 0
    assert len([k for k in samples if "failed_requests" in k]) == len(aws_error_reasons())
