"""botocore errors mapped to routewatch's typed AWS errors, each saying where it came from."""

from __future__ import annotations

import pytest
from botocore import exceptions as bx

from monitor.aws import (
    AwsAccessDenied,
    AwsCredentialsError,
    AwsError,
    AwsInvalidRequest,
    AwsNotFound,
    AwsServiceError,
    AwsThrottled,
    AwsTimeout,
    AwsUnreachable,
    aws_errors,
    map_aws_error,
)


def client_error(code: str, status: int = 400) -> bx.ClientError:
    return bx.ClientError({"Error": {"Code": code, "Message": f"{code} happened"},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, "Invoke")


@pytest.mark.parametrize(("exc", "kind", "reason"), [
    (client_error("ThrottlingException"), AwsThrottled, "aws_throttled"),
    (client_error("SlowDown", 429), AwsThrottled, "aws_throttled"),
    (client_error("AccessDeniedException", 403), AwsAccessDenied, "aws_access_denied"),
    (client_error("ResourceNotFoundException", 404), AwsNotFound, "aws_not_found"),
    (client_error("InvalidParameterValue"), AwsInvalidRequest, "aws_invalid_request"),
    (client_error("InternalFailure", 500), AwsServiceError, "aws_error"),
    (bx.NoCredentialsError(), AwsCredentialsError, "aws_credentials"),
    (bx.ReadTimeoutError(endpoint_url="https://lambda"), AwsTimeout, "aws_timeout"),
    (bx.ConnectTimeoutError(endpoint_url="https://lambda"), AwsTimeout, "aws_timeout"),
    (bx.EndpointConnectionError(endpoint_url="https://lambda"), AwsUnreachable,
     "aws_unreachable"),
    (bx.ParamValidationError(report="bad FunctionName"), AwsInvalidRequest,
     "aws_invalid_request"),
    (bx.NoRegionError(), AwsInvalidRequest, "aws_invalid_request"),
])
def test_mapping(exc: Exception, kind: type[AwsError], reason: str) -> None:
    mapped = map_aws_error(exc, service="lambda", operation="Invoke", region="eu-west-1")
    assert type(mapped) is kind
    assert mapped.reason == reason
    assert str(mapped).startswith("lambda.Invoke in eu-west-1: ")


def test_the_context_manager_chains_the_original() -> None:
    original = client_error("ThrottlingException")
    with pytest.raises(AwsThrottled) as caught, aws_errors("cloudwatch", "PutMetricData", None):
        raise original
    assert caught.value.__cause__ is original
    assert caught.value.code == "ThrottlingException"
    assert str(caught.value) == ("cloudwatch.PutMetricData in the default region: "
                                 "ThrottlingException: ThrottlingException happened")


def test_other_exceptions_pass_through_untouched() -> None:
    with pytest.raises(KeyError), aws_errors("lambda", "Invoke", "eu-west-1"):
        raise KeyError("not ours")
