"""One error model: library exceptions become typed probe errors in one table (the original kept
as the cause), every routewatch error shares one root, and production code has no ``assert``."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import ssl
from pathlib import Path

import dns.exception
import dns.message
import h11
import pytest

from probes.errors import (
    ConnectError,
    DnsError,
    DnsMalformed,
    DnsTimeout,
    DnsTransportError,
    HttpError,
    ProbeError,
    ProbeTimeout,
    ResponseError,
    RoutewatchError,
    TlsError,
    map_exception,
)

ROOT = Path(__file__).resolve().parents[2]


def wrapped(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised while handling ``inner``."""
    outer.__context__ = inner
    return outer


def cert_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "Hostname mismatch"
    return error


@pytest.mark.parametrize(("exc", "protocol", "kind", "text"), [
    (dns.exception.Timeout(), "dns", DnsTimeout, "no answer within 2 s"),
    (dns.message.ShortHeader(), "dns", DnsMalformed, "malformed DNS response"),
    (dns.exception.DNSException("odd"), "dns", DnsMalformed, "bad DNS response"),
    (ConnectionRefusedError(111, "Connection refused"), "dns", DnsTransportError,
     "Connection refused"),
    (RuntimeError("surprise"), "dns", DnsError, "RuntimeError: surprise"),
    (TimeoutError(), "http", ProbeTimeout, "no complete answer within 2 s"),
    (wrapped(OSError("x"), TimeoutError()), "http", ProbeTimeout, "timed out"),
    (wrapped(TimeoutError(), ssl.SSLWantReadError()), "http", ProbeTimeout, "no complete"),
    (cert_error(), "http", TlsError, "Hostname mismatch"),
    (ssl.SSLError(1, "x", "WRONG_VERSION_NUMBER"), "http", TlsError, "TLS handshake failed"),
    (ConnectionRefusedError(111, "Connection refused"), "http", ConnectError,
     "connection refused"),
    (ConnectionResetError(104, "Connection reset by peer"), "http", ConnectError, "reset"),
    (h11.RemoteProtocolError("garbage"), "http", ResponseError, "protocol error"),
    (OSError(101, "Network is unreachable"), "http", ConnectError, "Network is unreachable"),
    (RuntimeError("surprise"), "http", HttpError, "RuntimeError: surprise"),
])
def test_library_exceptions_map_to_typed_errors_with_their_cause(
        exc: BaseException, protocol: str, kind: type[ProbeError], text: str) -> None:
    error = map_exception(exc, protocol, target="t", timeout_s=2.0)  # type: ignore[arg-type]
    assert type(error) is kind
    assert text in str(error)
    assert error.__cause__ is exc
    assert str(error).endswith("(t)")


def _error_classes() -> list[type[BaseException]]:
    """Every exception class defined in probes and monitor (the lab's simulated servers keep
    their own internal exceptions: they are the watched app's, not routewatch's)."""
    found = []
    for package in ("probes", "monitor"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name.endswith("__main__") or info.name in (
                    "monitor.lab._http", "monitor.lab._edge"):
                continue
            module = importlib.import_module(info.name)
            found.extend(value for value in vars(module).values()
                         if isinstance(value, type) and issubclass(value, BaseException)
                         and value.__module__ == info.name)
    return found


def test_every_routewatch_error_has_one_root() -> None:
    classes = _error_classes()
    assert len(classes) > 20
    assert [c.__qualname__ for c in classes if not issubclass(c, RoutewatchError)] == []


def test_no_assert_in_production_code() -> None:
    found = []
    for path in sorted([*(ROOT / "monitor").rglob("*.py"), *(ROOT / "probes").rglob("*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found.extend(f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
                     if isinstance(node, ast.Assert))
    assert found == [], "asserts vanish under python -O: use a typed check"
