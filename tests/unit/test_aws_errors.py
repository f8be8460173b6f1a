"""botocore errors mapped to routewatch's typed AWS errors, each saying where it came from."""

from __future__ import annotations

import pytest
from botocore import exceptions as bx

from monitor.aws.clients import (
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
    cloudwatch_client,
    lambda_client,
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


def test_an_endpoint_that_is_not_a_url_is_an_invalid_request() -> None:
    with pytest.raises(AwsInvalidRequest) as caught:
        cloudwatch_client("eu-west-1", endpoint_url="notaurl")
    assert str(caught.value) == ("cloudwatch.create_client in eu-west-1: 'notaurl' is not an "
                                 "endpoint URL (give a full URL such as http://127.0.0.1:5000)")
    assert isinstance(caught.value.__cause__, ValueError)


@pytest.mark.parametrize("region", ["mars-1", "EU-WEST-1", "eu-west-1 ", "local"])
def test_a_region_that_is_not_an_aws_region_name_is_an_invalid_request(region: str) -> None:
    with pytest.raises(AwsInvalidRequest) as caught:
        lambda_client(region, read_timeout_s=1.0)
    assert f"{region!r} is not an AWS region name such as eu-west-1" in str(caught.value)


def test_a_default_region_that_is_not_an_aws_region_name_is_an_invalid_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "mars-1")
    with pytest.raises(AwsInvalidRequest) as caught:
        cloudwatch_client(None)
    assert "the default region 'mars-1'" in str(caught.value)


@pytest.mark.parametrize("region", ["eu-west-1", "us-gov-west-1", "cn-northwest-1",
                                    "us-isob-east-1", "ap-southeast-5"])
def test_real_region_names_make_clients(region: str) -> None:
    assert cloudwatch_client(region).meta.region_name == region
