"""serve with ``cloudwatch.enabled``: every published round also goes out with PutMetricData."""

from __future__ import annotations

import pytest
from e2e.moto_server import MotoServer, moto_server  # noqa: F401
from unit.test_serve_scheduler import CONFIG_YAML, loaded, ok_round

from monitor.aws.clients import cloudwatch_client
from monitor.cli.serve import _round_exporters
from monitor.config import Config
from monitor.core.model import VantageRound
from monitor.metrics import SnapshotStore
from monitor.serve.scheduler import RoundScheduler


@pytest.mark.e2e
async def test_rounds_reach_cloudwatch(moto_server: MotoServer,  # noqa: F811
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    moto_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)  # botocore honours it
    text = CONFIG_YAML + "cloudwatch: {enabled: true, region: us-east-1}\n"
    config = loaded(text).config
    exporters, close = _round_exporters(config)
    assert len(exporters) == 1
    store = SnapshotStore(config)

    async def runner(config: Config, name: str) -> VantageRound:
        return ok_round(config, name)

    scheduler = RoundScheduler(loaded(text), store, runner=runner, exporters=exporters)
    for name in ("nyc", "dub"):
        await scheduler.run_vantage(name)
    close()  # flushes what is buffered
    client = cloudwatch_client("us-east-1", endpoint_url=moto_server.endpoint_url)
    listed = client.list_metrics(Namespace="RouteWatch")["Metrics"]
    probes = {d["Value"] for m in listed for d in m["Dimensions"] if d["Name"] == "Probe"}
    assert probes == {"nyc", "dub"}


def test_cloudwatch_off_means_no_exporter() -> None:
    exporters, close = _round_exporters(loaded().config)
    assert exporters == []
    close()
