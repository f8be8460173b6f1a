"""``check --remote``: ask the probe deployed in every configured region for a round, at once.

Each region's function (``alarms.function_name`` in the config) is invoked synchronously
(``RequestResponse``) in its own thread, all regions concurrently, each bounded by the per-region
timeout. Each answer is validated against the round document's JSON Schema
(``monitor/data/report.schema.json``: a wrong-typed field anywhere rejects that region's answer, not
the merge), read back with :func:`~monitor.core.report.round_from_document` and merged with the
local round into one :class:`RoundResult`. A region that does not answer in time, is not deployed,
fails or answers something else becomes a :class:`RegionFailure` line; it never aborts the others
nor the local round.

Use from the ``check`` command::

    result, failures = asyncio.run(run_remote(config, run_round(config), timeout_s=30.0,
                                              progress=print_progress))
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources
from typing import Any

from monitor.config import Config
from monitor.core.model import RoundResult, VantageRound
from monitor.core.report import (
    EXIT_OK,
    EXIT_ROUTING_PROBLEM,
    DocumentError,
    exit_code,
    round_from_document,
)
from monitor.domain.text import printable
from probes.records import record

__all__ = [
    "InvokeAnswer",
    "Invoker",
    "RegionAnswer",
    "RegionFailure",
    "RemoteProgress",
    "boto3_invoker",
    "failure_document",
    "failure_lines",
    "invoke_regions",
    "merge_rounds",
    "remote_exit_code",
    "run_remote",
    "stderr_progress",
]

_PAYLOAD_LIMIT = 6 * 1024 * 1024  # a synchronous invoke answers at most 6 MB


@record
class InvokeAnswer:
    """What one synchronous invoke returned: the payload and whether the function raised."""

    payload: bytes
    function_error: str | None = None
    status_code: int = 200


Invoker = Callable[[str, bytes, float], InvokeAnswer]
"""(region, payload, timeout seconds) → answer; raises on a transport/API failure."""

RemoteProgress = Callable[[str, str], None]
"""(region, message): called when a region answers or fails, and while waiting."""


@record
class RegionFailure:
    """A region whose probe gave no usable round; ``reason`` is a bounded label value."""

    region: str
    reason: str  # timeout | not_deployed | access_denied | function_error | bad_answer | aws_*
    message: str
    elapsed_seconds: float

    def __str__(self) -> str:
        return f"{self.region}: no answer ({self.reason}): {self.message}"


@record
class RegionAnswer:
    region: str
    result: RoundResult
    elapsed_seconds: float


def boto3_invoker(function_name: str, *, endpoint_url: str | None = None) -> Invoker:
    """An invoker that calls ``lambda.invoke`` on the function of that name in each region.
    Raises :class:`~monitor.aws.clients.AwsSdkMissing` now, before any region is invoked."""
    from monitor.aws.clients import aws_errors, lambda_client, require_sdk

    require_sdk("lambda")
    document_validator()  # jsonschema comes with the aws extra, as boto3 does: say so now

    def invoke(region: str, payload: bytes, timeout_s: float) -> InvokeAnswer:
        client = lambda_client(region, read_timeout_s=timeout_s, endpoint_url=endpoint_url)
        with aws_errors("lambda", "Invoke", region):
            response = client.invoke(FunctionName=function_name,
                                     InvocationType="RequestResponse", Payload=payload)
            body = response["Payload"].read(_PAYLOAD_LIMIT + 1)
        return InvokeAnswer(body, response.get("FunctionError"),
                            int(response.get("StatusCode", 0)))

    return invoke


def _failure_from_exception(region: str, exc: BaseException, elapsed: float) -> RegionFailure:
    from monitor.aws.clients import AwsAccessDenied, AwsError, AwsNotFound, AwsTimeout

    if isinstance(exc, AwsNotFound):
        return RegionFailure(region, "not_deployed", f"the probe is not deployed there ({exc})",
                             elapsed)
    if isinstance(exc, AwsAccessDenied):
        return RegionFailure(region, "access_denied", str(exc), elapsed)
    if isinstance(exc, AwsTimeout):
        return RegionFailure(region, "timeout", str(exc), elapsed)
    if isinstance(exc, AwsError):
        return RegionFailure(region, exc.reason, str(exc), elapsed)
    return RegionFailure(region, "invoke_error", f"{type(exc).__name__}: {exc}", elapsed)


def read_answer(region: str, answer: InvokeAnswer, elapsed: float) -> RegionAnswer | RegionFailure:
    """Turn one invoke answer into a round, or a failure that says what was wrong with it."""
    if answer.function_error is not None:
        detail = answer.payload[:500].decode("utf-8", "replace")
        try:
            error = json.loads(answer.payload)
            detail = f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
        except (ValueError, AttributeError):
            pass
        return RegionFailure(region, "function_error",
                             f"the probe failed ({answer.function_error}): {detail}", elapsed)
    if len(answer.payload) > _PAYLOAD_LIMIT:
        return RegionFailure(region, "bad_answer", "answer larger than 6 MB", elapsed)
    try:
        document = json.loads(answer.payload)
    except (ValueError, RecursionError) as exc:
        snippet = answer.payload[:80].decode("utf-8", "replace")
        return RegionFailure(region, "bad_answer", f"not JSON ({type(exc).__name__}); answer "
                                                   f"began {snippet!r}", elapsed)
    problem = document_problem(document)
    if problem is not None:
        return RegionFailure(region, "bad_answer", f"not a round document: {problem}", elapsed)
    try:
        result = round_from_document(document, f"{region} probe")
    except (ValueError, TypeError, DocumentError) as exc:
        return RegionFailure(region, "bad_answer", f"not a round document ({exc})", elapsed)
    if not result.vantage_points:
        return RegionFailure(region, "bad_answer", "the round has no vantage point", elapsed)
    return RegionAnswer(region, result, elapsed)


_REPORT_SCHEMA = "data/report.schema.json"


@cache
def document_validator() -> Any:
    """A validator of the round document's JSON Schema (raises :class:`AwsSdkMissing` when
    jsonschema, part of the aws extra, is not installed)."""
    try:
        import jsonschema
    except ImportError as exc:
        from monitor.aws.clients import INSTALL_AWS_EXTRA, AwsSdkMissing

        raise AwsSdkMissing(f"check --remote validates the regional probes' answers with "
                            f"jsonschema, which is not installed: {INSTALL_AWS_EXTRA}",
                            service="lambda", operation="validate", region=None) from exc
    text = resources.files("monitor").joinpath(_REPORT_SCHEMA).read_text(encoding="utf-8")
    schema = json.loads(text)
    return jsonschema.Draft202012Validator(schema)


def document_problem(document: Any) -> str | None:
    """What makes ``document`` not a round document (the first problem, with where it is), or
    None when the schema accepts it."""
    import jsonschema.exceptions

    error = jsonschema.exceptions.best_match(document_validator().iter_errors(document))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "the document"
    return f"{where}: {error.message[:200]}"


async def invoke_regions(
    regions: Sequence[str],
    invoker: Invoker,
    timeout_s: float,
    *,
    progress: RemoteProgress | None = None,
    tick_s: float = 5.0,
) -> list[RegionAnswer | RegionFailure]:
    """Invoke every region concurrently; each gets ``timeout_s``; results in ``regions`` order."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    outcomes: dict[str, RegionAnswer | RegionFailure] = {}

    def note(region: str, message: str) -> None:
        if progress is not None:
            progress(region, message)

    # a thread per region: a hung region must not hold up the others' answers
    executor = ThreadPoolExecutor(max_workers=max(1, len(regions)),
                                  thread_name_prefix="routewatch-remote")

    async def one(region: str) -> None:
        payload = json.dumps({"source": "routewatch-remote", "region": region}).encode()
        begun = time.perf_counter()
        future = loop.run_in_executor(executor, invoker, region, payload, timeout_s)
        try:
            answer = await asyncio.wait_for(future, timeout_s + 1.0)
            outcome = read_answer(region, answer, time.perf_counter() - begun)
        except TimeoutError:
            outcome = RegionFailure(region, "timeout", f"no answer within {timeout_s:g} s",
                                    time.perf_counter() - begun)
        except Exception as exc:
            outcome = _failure_from_exception(region, exc, time.perf_counter() - begun)
        outcomes[region] = outcome
        if isinstance(outcome, RegionFailure):
            note(region, f"no answer ({outcome.reason}) after {outcome.elapsed_seconds:.1f} s")
        else:
            note(region, f"answered in {outcome.elapsed_seconds:.1f} s")

    try:
        for region in regions:
            note(region, "invoking")
        tasks = {asyncio.ensure_future(one(region)) for region in regions}
        pending = tasks
        # bounded: each pass waits tick_s, and every task ends by timeout_s + 1 s
        for _ in range(int((timeout_s + 2.0) / max(tick_s, 0.01)) + 2):
            if not pending:
                break
            _, pending = await asyncio.wait(pending, timeout=tick_s)
            waiting = [r for r in regions if r not in outcomes]
            if pending and waiting:
                note(",".join(waiting),
                     f"still waiting ({time.perf_counter() - started:.0f} s)")
        if pending:
            await asyncio.gather(*pending)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return [outcomes[region] for region in regions]


def merge_rounds(local: RoundResult | None, answers: Sequence[RegionAnswer]) -> RoundResult:
    """One round: the local vantage points, then each region's. A regional probe's round
    replaces a local one of the same vantage point name (it ran where that name says)."""
    remote: list[VantageRound] = []
    for answer in answers:
        remote.extend(answer.result.vantage_points)
    remote_names = {v.vantage for v in remote}
    local_rounds = [v for v in (local.vantage_points if local else ())
                    if v.vantage not in remote_names]
    seen: set[tuple[str, str]] = set()  # (service, vantage point)
    merged: list[VantageRound] = []
    for vantage in (*local_rounds, *remote):
        if (key := (vantage.service, vantage.vantage)) not in seen:  # two regions answering
            seen.add(key)                                           # for one name: the first
            merged.append(vantage)
    starts = [r.started_at for r in ([local] if local else []) + [a.result for a in answers]]
    started = min(starts) if starts else time.time()
    ends = [r.started_at + r.duration_seconds
            for r in ([local] if local else []) + [a.result for a in answers]]
    duration = max(ends) - started if ends else 0.0
    return RoundResult(tuple(merged), started, duration)


async def run_remote(
    config: Config,
    local: RoundResult | Awaitable[RoundResult] | None,
    timeout_s: float,
    *,
    regions: Sequence[str] | None = None,
    invoker: Invoker | None = None,
    progress: RemoteProgress | None = None,
    endpoint_url: str | None = None,
) -> tuple[RoundResult, list[RegionFailure]]:
    """Invoke the probe in every configured region (or ``regions``) and merge with ``local``.

    ``local`` may be the local round, an awaitable of it (run concurrently with the invokes, e.g.
    ``run_round(config)``), or None. Returns the merged round and one failure per region that
    did not answer; raises nothing for a region's failure.
    """
    targets = list(regions) if regions is not None else list(config.regions)
    if invoker is None:
        invoker = boto3_invoker(config.alarms.function_name, endpoint_url=endpoint_url)
    remote_task = asyncio.ensure_future(
        invoke_regions(targets, invoker, timeout_s, progress=progress))
    local_round: RoundResult | None
    if local is None or isinstance(local, RoundResult):
        local_round = local
    else:
        try:
            local_round = await local
        except BaseException:
            remote_task.cancel()
            raise
    outcomes = await remote_task
    answers = [o for o in outcomes if isinstance(o, RegionAnswer)]
    failures = [o for o in outcomes if isinstance(o, RegionFailure)]
    return merge_rounds(local_round, answers), failures


def remote_exit_code(result: RoundResult, failures: Sequence[RegionFailure], *,
                     strict: bool = False) -> int:
    """The check's exit code with regional probes: a region that did not answer counts like an
    unknown verdict (1: the gate cannot vouch for it); nothing measured at all is 3."""
    code = exit_code(result, strict=strict)
    if failures and code == EXIT_OK:
        return EXIT_ROUTING_PROBLEM
    return code


def stderr_progress(region: str, message: str) -> None:
    """A :data:`RemoteProgress` printing one line per event on stderr."""
    print(f"remote {region}: {message}", file=sys.stderr, flush=True)


def failure_lines(failures: Sequence[RegionFailure]) -> list[str]:
    """One clear line per region that did not answer, for the table's footer."""
    return [f"{f.region}: no answer ({f.reason}) after {f.elapsed_seconds:.1f} s: "
            f"{printable(f.message)}" for f in failures]


def failure_document(failures: Sequence[RegionFailure]) -> list[dict[str, Any]]:
    """The failures as JSON (for ``check --remote --json``)."""
    return [{"region": f.region, "reason": f.reason, "message": f.message,
             "elapsed_seconds": round(f.elapsed_seconds, 3)} for f in failures]
