"""AWS access at one boundary: lazily created boto3 clients and botocore errors mapped to types.

boto3 is imported only when a client is first asked for, so the Lambda handler (which needs no
AWS API: its metrics are EMF on stdout) and every command that does not talk to AWS start fast.

The error tree (``reason`` is a bounded label value)::

    AwsError                        reason
    ├── AwsCredentialsError         aws_credentials
    ├── AwsAccessDenied             aws_access_denied
    ├── AwsThrottled                aws_throttled
    ├── AwsNotFound                 aws_not_found
    ├── AwsInvalidRequest           aws_invalid_request
    ├── AwsTimeout                  aws_timeout
    ├── AwsUnreachable              aws_unreachable
    ├── AwsSdkMissing               aws_sdk_missing
    └── AwsServiceError             aws_error

Every error says where it came from: service, operation and region. A client that cannot even be
made (an endpoint that is not a URL, a region that is not an AWS region name) is an
:class:`AwsInvalidRequest` from operation ``create_client``.

boto3 is the ``aws`` extra, not a dependency (``pip install .`` leaves it out): every client is
made here, and without boto3 that is an :class:`AwsSdkMissing` whose message is the one line to
run, which the commands print as any AWS error (exit 2).

``endpoint_url`` (or the standard ``AWS_ENDPOINT_URL`` variable, which botocore reads itself)
points the clients at a stand-in such as ``moto_server``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from monitor.domain.patterns import REGION_NAME as _AWS_REGION
from probes.errors import RoutewatchError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_route53 import Route53Client

__all__ = [
    "AwsAccessDenied",
    "AwsCredentialsError",
    "AwsError",
    "AwsInvalidRequest",
    "AwsNotFound",
    "AwsSdkMissing",
    "AwsServiceError",
    "AwsThrottled",
    "AwsTimeout",
    "AwsUnreachable",
    "aws_error_reasons",
    "aws_errors",
    "cloudwatch_client",
    "lambda_client",
    "map_aws_error",
    "require_sdk",
    "route53_client",
]

RetryMode = Literal["legacy", "standard", "adaptive"]


class AwsError(RoutewatchError):
    """An AWS call that failed; says which service, operation and region, and AWS's error code."""

    reason = "aws_error"

    def __init__(self, message: str, *, service: str, operation: str, region: str | None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        self.operation = operation
        self.region = region
        self.code = code

    @property
    def where(self) -> str:
        return f"{self.service}.{self.operation} in {self.region or 'the default region'}"

    def __str__(self) -> str:
        code = f"{self.code}: " if self.code else ""
        return f"{self.where}: {code}{self.message}"


class AwsCredentialsError(AwsError):
    reason = "aws_credentials"


class AwsAccessDenied(AwsError):
    reason = "aws_access_denied"


class AwsThrottled(AwsError):
    reason = "aws_throttled"


class AwsNotFound(AwsError):
    reason = "aws_not_found"


class AwsInvalidRequest(AwsError):
    reason = "aws_invalid_request"


class AwsTimeout(AwsError):
    reason = "aws_timeout"


class AwsUnreachable(AwsError):
    reason = "aws_unreachable"


class AwsServiceError(AwsError):
    reason = "aws_error"


class AwsSdkMissing(AwsError):
    """boto3 is not installed; the message says which extra brings it."""

    reason = "aws_sdk_missing"

    def __str__(self) -> str:  # the fix, not a service call: there was none
        return self.message


def aws_error_reasons() -> tuple[str, ...]:
    """Every ``reason`` of the tree, sorted (label values known before any error happens)."""
    reasons = {AwsError.reason}
    pending = list(AwsError.__subclasses__())
    while pending:  # bounded by the class tree
        kind = pending.pop()
        reasons.add(kind.reason)
        pending.extend(kind.__subclasses__())
    return tuple(sorted(reasons))


_CODES: dict[str, type[AwsError]] = {
    **dict.fromkeys(("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                     "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
                     "ExpiredTokenException", "InvalidSignatureException",
                     "SignatureDoesNotMatch", "AuthFailure"), AwsAccessDenied),
    **dict.fromkeys(("Throttling", "ThrottlingException", "ThrottledException",
                     "TooManyRequestsException", "RequestLimitExceeded", "PriorRequestNotComplete",
                     "LimitExceededException", "RequestThrottled"), AwsThrottled),
    **dict.fromkeys(("ResourceNotFoundException", "ResourceNotFound", "NoSuchHostedZone",
                     "NotFound", "NoSuchEntity"), AwsNotFound),
    **dict.fromkeys(("ValidationError", "ValidationException", "InvalidParameterValue",
                     "InvalidParameterCombination", "InvalidParameterValueException",
                     "MissingParameter", "InvalidInput", "InvalidRequestContentException",
                     "RequestTooLargeException", "InvalidFormat"), AwsInvalidRequest),
}


def map_aws_error(exc: BaseException, *, service: str, operation: str,
                  region: str | None) -> AwsError:
    """Map a botocore exception to the typed tree (the one boundary)."""
    from botocore import exceptions as bx

    def where(kind: type[AwsError], message: str, code: str | None = None) -> AwsError:
        return kind(message, service=service, operation=operation, region=region, code=code)

    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        kind = _CODES.get(code)
        if kind is None:
            kind = AwsThrottled if status == 429 else AwsServiceError
        return where(kind, message, code or None)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError
                  | bx.CredentialRetrievalError | bx.UnknownCredentialError):
        return where(AwsCredentialsError, f"no usable AWS credentials ({exc})")
    if isinstance(exc, bx.ParamValidationError):
        return where(AwsInvalidRequest, str(exc).strip())
    if isinstance(exc, bx.ReadTimeoutError | bx.ConnectTimeoutError):
        return where(AwsTimeout, f"timed out ({exc})")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError
                  | bx.ProxyConnectionError):
        return where(AwsUnreachable, f"cannot reach the endpoint ({exc})")
    if isinstance(exc, bx.NoRegionError):
        return where(AwsInvalidRequest, "no region given and no default region configured")
    if isinstance(exc, bx.BotoCoreError | OSError):
        return where(AwsServiceError, f"{type(exc).__name__}: {exc}")
    raise TypeError(f"not an AWS error: {exc!r}") from exc


@contextlib.contextmanager
def aws_errors(service: str, operation: str, region: str | None) -> Iterator[None]:
    """Re-raise botocore errors inside the block as :class:`AwsError` (``raise ... from``)."""
    from botocore import exceptions as bx

    try:
        yield
    except (bx.BotoCoreError, bx.ClientError) as exc:
        raise map_aws_error(exc, service=service, operation=operation, region=region) from exc


# --- clients -------------------------------------------------------------------------------------

INSTALL_AWS_EXTRA = "pip install 'routewatch[aws]'"


def require_sdk(service: str, region: str | None = None) -> None:
    """Raise :class:`AwsSdkMissing` unless boto3 (and its botocore) can be imported."""
    try:
        import boto3  # noqa: F401
        import botocore  # noqa: F401
    except ImportError as exc:
        raise AwsSdkMissing(
            f"this command talks to AWS ({service}) and needs boto3, which is not installed: "
            f"{INSTALL_AWS_EXTRA}",
            service=service, operation="create_client", region=region) from exc


_session_lock = threading.Lock()
_session: Any = None


def _boto_session() -> Any:
    """One boto3 session per process: sessions are not thread-safe, so clients are made under a
    lock (the clients themselves are)."""
    global _session
    if _session is None:
        import boto3.session

        _session = boto3.session.Session()
    return _session


def _client(service: str, region: str | None, *, endpoint_url: str | None, retry_mode: RetryMode,
            max_attempts: int, connect_timeout_s: float, read_timeout_s: float) -> Any:
    require_sdk(service, region)
    from botocore.config import Config as BotoConfig

    boto_config = BotoConfig(
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        user_agent_extra="routewatch",
    )
    def invalid(message: str, where: str | None = region) -> AwsInvalidRequest:
        return AwsInvalidRequest(message, service=service, operation="create_client",
                                 region=where)

    if region is not None and not _AWS_REGION.match(region):
        raise invalid(f"{region!r} is not an AWS region name such as eu-west-1")
    with _session_lock, aws_errors(service, "create_client", region):
        try:
            client = _boto_session().client(service, region_name=region,
                                            endpoint_url=endpoint_url, config=boto_config)
        except ValueError as exc:  # botocore's own check of endpoint_url
            if endpoint_url is not None and "endpoint" in str(exc).lower():
                raise invalid(f"{endpoint_url!r} is not an endpoint URL (give a full URL "
                              f"such as http://127.0.0.1:5000)") from exc
            raise invalid(str(exc)) from exc
    resolved = client.meta.region_name  # from AWS_DEFAULT_REGION or ~/.aws/config when not given
    if region is None and resolved is not None and not _AWS_REGION.match(resolved):
        raise invalid(f"the default region {resolved!r} (AWS_DEFAULT_REGION or ~/.aws/config) "
                      f"is not an AWS region name such as eu-west-1", resolved)
    return client


def cloudwatch_client(region: str | None, *, endpoint_url: str | None = None,
                      retry_mode: RetryMode = "adaptive", max_attempts: int = 5,
                      connect_timeout_s: float = 5.0,
                      read_timeout_s: float = 10.0) -> CloudWatchClient:
    """A CloudWatch client; adaptive retries back off (client-side rate limit) when throttled."""
    client: CloudWatchClient = _client(
        "cloudwatch", region, endpoint_url=endpoint_url, retry_mode=retry_mode,
        max_attempts=max_attempts, connect_timeout_s=connect_timeout_s,
        read_timeout_s=read_timeout_s)
    return client


def lambda_client(region: str | None, *, read_timeout_s: float, endpoint_url: str | None = None,
                  max_attempts: int = 1, connect_timeout_s: float = 5.0) -> LambdaClient:
    """A Lambda client for synchronous invokes: the read timeout bounds the wait for the
    function's answer, and by default nothing is retried (a retried probe round doubles the
    wait and the answer would be stale anyway)."""
    client: LambdaClient = _client(
        "lambda", region, endpoint_url=endpoint_url, retry_mode="standard",
        max_attempts=max_attempts, connect_timeout_s=min(connect_timeout_s, read_timeout_s),
        read_timeout_s=read_timeout_s)
    return client


def route53_client(*, endpoint_url: str | None = None, max_attempts: int = 5,
                   read_timeout_s: float = 10.0) -> Route53Client:
    """A Route 53 client (a global service, signed for us-east-1)."""
    client: Route53Client = _client(
        "route53", "us-east-1", endpoint_url=endpoint_url, retry_mode="standard",
        max_attempts=max_attempts, connect_timeout_s=5.0, read_timeout_s=read_timeout_s)
    return client
