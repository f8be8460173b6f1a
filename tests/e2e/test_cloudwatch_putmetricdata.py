"""The PutMetricData exporter: batching, bounded buffer, drops counted, never blocking a round;
and a round trip through a real moto server (put, then read back with GetMetricStatistics)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from e2e.moto_server import MotoServer, moto_server  # noqa: F401 - the fixture
from rounds import sample_round

from monitor.aws.clients import cloudwatch_client
from monitor.config import CloudWatchSettings
from monitor.exporters.cloudwatch import (
    MAX_VALUES_PER_REQUEST,
    CloudWatchPublisher,
    Datapoint,
    batches,
    round_datapoints,
)

REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")


class RecordingClient:
    """Stands in for a CloudWatch client: records requests, can block or fail on demand."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_with: Exception | None = None

    def put_metric_data(self, **request: Any) -> dict[str, Any]:
        self.entered.set()
        assert self.release.wait(30), "test never released the client"
        if self.fail_with is not None:
            raise self.fail_with
        self.requests.append(request)
        return {}


def points(count: int) -> list[Datapoint]:
    return [Datapoint("RoundDuration", float(i), (("Probe", f"p{i % 7}"),), 1.8e9)
            for i in range(count)]


def test_batches_hold_at_most_1000_values() -> None:
    sizes = [len(b) for b in batches(points(2500))]
    assert sizes == [1000, 1000, 500]
    assert max(sizes) <= MAX_VALUES_PER_REQUEST


def test_flush_sends_everything_in_batches() -> None:
    client = RecordingClient()
    publisher = CloudWatchPublisher(namespace="RouteWatch", regions=REGIONS,
                                    client=client)  # type: ignore[arg-type]
    publisher.enqueue(points(2300))
    outcome = publisher.flush()
    assert (outcome.requests, outcome.sent, outcome.rejected) == (3, 2300, 0)
    assert [len(r["MetricData"]) for r in client.requests] == [1000, 1000, 300]
    assert all(r["Namespace"] == "RouteWatch" for r in client.requests)
    assert publisher.buffered == 0


def test_a_full_buffer_drops_the_oldest_counts_logs_and_reports_them(
        caplog: pytest.LogCaptureFixture) -> None:
    client = RecordingClient()
    publisher = CloudWatchPublisher(namespace="RouteWatch", regions=REGIONS,
                                    client=client, buffer_limit=100)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        publisher.enqueue(points(130))
    assert publisher.buffered == 100
    assert publisher.dropped == {"buffer_full": 30, "request_failed": 0}
    assert "dropped the 30 oldest" in caplog.text
    publisher.flush()
    sent = client.requests[0]["MetricData"]
    assert sent[0]["Value"] == 30.0  # the oldest 30 went
    dropped = [d for d in sent if d["MetricName"] == "DroppedDatapoints"]
    assert [d["Value"] for d in dropped] == [30.0]
    client.requests.clear()
    publisher.enqueue(points(1))
    publisher.flush()
    assert not [d for d in client.requests[0]["MetricData"]
                if d["MetricName"] == "DroppedDatapoints"]  # reported once


def test_a_rejected_request_is_dropped_counted_and_logged_not_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    client = cloudwatch_client("us-east-1", endpoint_url="http://127.0.0.1:9")
    publisher = CloudWatchPublisher(namespace="RouteWatch", regions=REGIONS, client=client)
    publisher.export(sample_round())
    queued = publisher.buffered
    with Stubber(client) as stub, caplog.at_level(logging.WARNING):
        stub.add_client_error("put_metric_data", service_error_code="Throttling",
                              service_message="Rate exceeded", http_status_code=400)
        outcome = publisher.flush()
    assert outcome.rejected == queued
    assert publisher.dropped["request_failed"] == queued
    assert "cloudwatch.PutMetricData in us-east-1: Throttling: Rate exceeded" in caplog.text


def test_throttling_is_retried_by_botocore_adaptive_mode() -> None:
    client = cloudwatch_client("eu-west-1", endpoint_url="http://127.0.0.1:9")
    retries = client.meta.config.retries
    assert retries is not None
    assert retries["mode"] == "adaptive"
    assert retries["total_max_attempts"] >= 3


def test_export_never_waits_for_cloudwatch() -> None:
    client = RecordingClient()
    client.release.clear()  # CloudWatch "hangs"
    publisher = CloudWatchPublisher(namespace="RouteWatch", regions=REGIONS,
                                    client=client, flush_interval_s=3600)  # type: ignore[arg-type]
    publisher.start()
    try:
        publisher.export(sample_round())
        assert client.entered.wait(30)  # the worker is stuck inside put_metric_data...
        queued = publisher.export(sample_round())  # ...and the next round still gets through
        assert queued > 0
        assert publisher.buffered == queued
    finally:
        client.release.set()
        publisher.close()
    assert publisher.buffered == 0
    assert sum(len(r["MetricData"]) for r in client.requests) == 2 * queued


@pytest.mark.e2e
def test_metrics_round_trip_through_moto(moto_server: MotoServer) -> None:  # noqa: F811
    moto_server.reset()
    client = cloudwatch_client("eu-west-1", endpoint_url=moto_server.endpoint_url)
    publisher = CloudWatchPublisher.from_settings(
        CloudWatchSettings(enabled=True, region="eu-west-1"), REGIONS,
        endpoint_url=moto_server.endpoint_url)
    result = sample_round()
    expected = {p.name: p.value for p in round_datapoints(result, REGIONS)
                if p.dimensions == (("Probe", "eu-west-1"), ("Path", "origin"))}
    publisher.export(result)
    assert publisher.flush().rejected == 0

    when = datetime.fromtimestamp(result.started_at, UTC)
    for name in ("Misrouted", "RoutingPenalty", "PathLatency"):
        stats = client.get_metric_statistics(
            Namespace="RouteWatch", MetricName=name,
            Dimensions=[{"Name": "Probe", "Value": "eu-west-1"},
                        {"Name": "Path", "Value": "origin"}],
            StartTime=when - timedelta(minutes=5), EndTime=when + timedelta(minutes=5),
            Period=60, Statistics=["Maximum", "SampleCount"])
        [point] = stats["Datapoints"]
        assert point["Maximum"] == expected[name]
        assert point["SampleCount"] == 1
    listed = client.list_metrics(Namespace="RouteWatch")["Metrics"]
    assert {m["MetricName"] for m in listed} >= {"RoundCompleted", "RegionLatency", "Misrouted"}
    units = client.get_metric_statistics(
        Namespace="RouteWatch", MetricName="RegionLatency",
        Dimensions=[{"Name": "Probe", "Value": "eu-west-1"},
                    {"Name": "Region", "Value": "eu-west-1"}],
        StartTime=when - timedelta(minutes=5), EndTime=when + timedelta(minutes=5),
        Period=60, Statistics=["Average"], Unit="Milliseconds")
    assert units["Datapoints"][0]["Average"] == 12.0
