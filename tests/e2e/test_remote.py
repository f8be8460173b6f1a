"""``check --remote``: regional answers merged with the local round; failures reported per region.

The merge is tested with invokers that answer like the handler does (here with synthetic round
documents; tests/test_lambda_handler.py invokes the real handler for several regions of a lab
world); the boto3 call shape (RequestResponse invoke, FunctionError, missing function) against a
moto server, which runs no Lambda code but answers with a queued payload.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import zipfile
from dataclasses import replace

import pytest
from e2e.moto_server import MotoServer, moto_server  # noqa: F401 - the fixture
from rounds import sample_round

from monitor.aws.remote import (
    InvokeAnswer,
    RegionAnswer,
    RegionFailure,
    boto3_invoker,
    merge_rounds,
    read_answer,
    run_remote,
)
from monitor.config import parse_config
from monitor.core.model import RoundResult
from monitor.core.report import round_document

CONFIG = parse_config("""
service: {origin_name: global-alb.example.com}
regions:
  eu-west-1: {addresses: [192.0.2.10]}
  us-east-1: {addresses: [192.0.2.20]}
  ap-south-1: {addresses: [192.0.2.30]}
vantage_points:
  laptop: {resolver: 192.0.2.53}
  eu-west-1: {resolver: 192.0.2.53, region: eu-west-1}
  us-east-1: {resolver: 192.0.2.53, region: us-east-1}
  ap-south-1: {resolver: 192.0.2.53, region: ap-south-1}
alarms: {function_name: routewatch-probe}
""").config


def answer_for(region: str) -> bytes:
    return json.dumps(round_document(sample_round(region, misrouted=False))).encode()


def test_every_region_answering_merges_into_one_round() -> None:
    calls: list[tuple[str, dict[str, str], float]] = []
    lock = threading.Lock()

    def invoker(region: str, payload: bytes, timeout_s: float) -> InvokeAnswer:
        with lock:
            calls.append((region, json.loads(payload), timeout_s))
        return InvokeAnswer(answer_for(region))

    local = sample_round("laptop")
    progress: list[tuple[str, str]] = []
    merged, failures = asyncio.run(run_remote(
        CONFIG, local, 5.0, invoker=invoker, progress=lambda r, m: progress.append((r, m))))
    assert failures == []
    assert [v.vantage for v in merged.vantage_points] == [
        "laptop", "eu-west-1", "us-east-1", "ap-south-1"]
    assert sorted(c[0] for c in calls) == sorted(CONFIG.regions)
    assert all(c[1] == {"source": "routewatch-remote", "region": c[0]} and c[2] == 5.0
               for c in calls)
    assert ("us-east-1", "invoking") in progress
    assert any(r == "ap-south-1" and m.startswith("answered in") for r, m in progress)


def test_a_region_that_times_out_is_reported_not_fatal() -> None:
    hang = threading.Event()

    def invoker(region: str, payload: bytes, timeout_s: float) -> InvokeAnswer:
        if region == "ap-south-1":
            hang.wait(30)  # released below; the per-region timeout gives up on it first
            return InvokeAnswer(b"too late")
        return InvokeAnswer(answer_for(region))

    try:
        merged, failures = asyncio.run(run_remote(
            CONFIG, sample_round("laptop"), 0.2, invoker=invoker))
    finally:
        hang.set()
    assert [v.vantage for v in merged.vantage_points] == ["laptop", "eu-west-1", "us-east-1"]
    [failure] = failures
    assert (failure.region, failure.reason) == ("ap-south-1", "timeout")
    assert "no answer within 0.2 s" in str(failure)


def test_failures_say_what_went_wrong() -> None:
    error = json.dumps({"errorType": "VantageNotFound", "errorMessage": "no vantage"}).encode()
    cases = {
        "eu-west-1": InvokeAnswer(error, "Unhandled"),
        "us-east-1": InvokeAnswer(b"Simple Lambda happy path OK"),
        "ap-south-1": InvokeAnswer(json.dumps({"vantage_points": [{"name": "x"}]}).encode()),
    }
    outcomes = {r: read_answer(r, a, 0.1) for r, a in cases.items()}
    assert isinstance(outcomes["eu-west-1"], RegionFailure)
    assert outcomes["eu-west-1"].reason == "function_error"
    assert "VantageNotFound: no vantage" in outcomes["eu-west-1"].message
    assert all(isinstance(o, RegionFailure) and o.reason == "bad_answer"
               for r, o in outcomes.items() if r != "eu-west-1")


def test_an_exception_in_one_region_leaves_the_others() -> None:
    from monitor.aws.clients import AwsNotFound

    def invoker(region: str, payload: bytes, timeout_s: float) -> InvokeAnswer:
        if region == "us-east-1":
            raise AwsNotFound("Function not found", service="lambda", operation="Invoke",
                              region=region, code="ResourceNotFoundException")
        return InvokeAnswer(answer_for(region))

    merged, failures = asyncio.run(run_remote(CONFIG, None, 5.0, invoker=invoker))
    assert [v.vantage for v in merged.vantage_points] == ["eu-west-1", "ap-south-1"]
    assert [(f.region, f.reason) for f in failures] == [("us-east-1", "not_deployed")]


def test_the_local_round_can_run_concurrently() -> None:
    async def local_round() -> RoundResult:
        await asyncio.sleep(0)
        return sample_round("laptop")

    merged, _ = asyncio.run(run_remote(
        CONFIG, local_round(), 5.0, regions=["eu-west-1"],
        invoker=lambda r, p, t: InvokeAnswer(answer_for(r))))
    assert [v.vantage for v in merged.vantage_points] == ["laptop", "eu-west-1"]


def test_a_regional_round_replaces_a_local_one_of_the_same_name() -> None:
    local = sample_round("eu-west-1", misrouted=True)
    remote = sample_round("eu-west-1", misrouted=False)
    merged = merge_rounds(local, [RegionAnswer("eu-west-1", remote, 0.1)])
    [vantage] = merged.vantage_points
    assert vantage is remote.vantage_points[0]
    assert merged.started_at == min(local.started_at, remote.started_at)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("monitor/aws/lambda_handler.py", "def handler(event, context): ...\n")
    return buffer.getvalue()


@pytest.mark.e2e
def test_invoke_call_shape_against_moto(moto_server: MotoServer) -> None:  # noqa: F811
    import boto3

    moto_server.reset()
    moto_server.post("/moto-api/config", {"lambda": {"use_docker": False}})
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=moto_server.endpoint_url)
    role = iam.create_role(RoleName="probe", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}],
    }))["Role"]["Arn"]
    for region in ("eu-west-1", "us-east-1"):
        client = boto3.client("lambda", region_name=region,
                              endpoint_url=moto_server.endpoint_url)
        client.create_function(FunctionName="routewatch-probe", Runtime="python3.12",
                               Role=role, Handler="monitor.aws.lambda_handler.handler",
                               Code={"ZipFile": _zip()}, Architectures=["arm64"])
        # moto runs no code: it answers a RequestResponse invoke with the next queued payload
        moto_server.post("/moto-api/static/lambda-simple/response",
                         {"results": [answer_for(region).decode()], "region": region})

    invoker = boto3_invoker("routewatch-probe", endpoint_url=moto_server.endpoint_url)
    merged, failures = asyncio.run(run_remote(CONFIG, None, 10.0, invoker=invoker,
                                              regions=["eu-west-1", "us-east-1"]))
    assert failures == []
    assert [v.vantage for v in merged.vantage_points] == ["eu-west-1", "us-east-1"]

    # moto's docker-less backend answers even for a missing function; its default backend
    # looks the function up first (and needs no docker to say it is not there)
    moto_server.post("/moto-api/config", {"lambda": {"use_docker": True}})
    merged, failures = asyncio.run(run_remote(CONFIG, None, 10.0, invoker=invoker,
                                              regions=["ap-south-1"]))
    assert merged.vantage_points == ()
    [failure] = failures
    assert (failure.region, failure.reason) == ("ap-south-1", "not_deployed")
    assert "lambda.Invoke in ap-south-1: ResourceNotFoundException" in failure.message


def test_exit_code_counts_a_silent_region_as_a_problem() -> None:
    from monitor.aws.remote import failure_lines, remote_exit_code

    sample = sample_round("eu-west-1", misrouted=False)
    vantage = sample.vantage_points[0]
    ok = replace(sample, vantage_points=(replace(vantage, paths=vantage.paths[:2]),))
    silent = [RegionFailure("ap-south-1", "timeout", "no answer within 5 s", 5.0)]
    assert remote_exit_code(ok, []) == 0
    assert remote_exit_code(ok, silent) == 1
    assert remote_exit_code(RoundResult((), 0.0, 0.0), silent) == 3  # nothing measured
    assert failure_lines(silent) == [
        "ap-south-1: no answer (timeout) after 5.0 s: no answer within 5 s"]
