"""The routewatch configuration: YAML, validated by pydantic v2, unknown keys rejected.

Load with :func:`load_config`; a bad file raises :class:`ConfigError` carrying one
:class:`ConfigProblem` per mistake (key path, line where known, message). Production pitfalls that
are legal but will bite (a host name with ``_``) come back as warnings on :class:`LoadedConfig`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "AlarmSettings",
    "CdnSettings",
    "CloudWatchSettings",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Estimator",
    "IpRangesSettings",
    "LoadedConfig",
    "ProbeSettings",
    "Region",
    "ServeSettings",
    "Service",
    "Tolerance",
    "VantagePoint",
    "load_config",
    "parse_config",
]

_LABEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_REGION_NAME = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*"
                        r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_POP_CODE = re.compile(r"^[A-Z]{3}\d{1,3}(-[A-Z0-9]{1,3})?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _host(value: str) -> str:
    if not _HOST_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid DNS host name")
    return value.rstrip(".").lower()


def _endpoint(value: str, default_port: int) -> str:
    """Normalise ``address`` or ``address:port`` (``[v6]:port``) and validate the address."""
    host, port = split_endpoint(value, default_port)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_endpoint(value: str, default_port: int) -> tuple[str, int]:
    """Split ``host[:port]`` / ``[v6]:port`` into an IP address and a port."""
    text = value.strip()
    port = default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text)
    else:
        host = text
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (optionally with :port)") from None
    return host, port


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"port {text!r} is not between 1 and 65535")
    return int(text)


def _region_name(name: str) -> str:
    if not _REGION_NAME.match(name):
        raise ValueError(f"{name!r} is not an AWS region name such as eu-west-1")
    return name


def _vantage_name(name: str) -> str:
    if not _LABEL_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid name (lower case letters, digits, - and _)")
    return name


RegionName = Annotated[str, AfterValidator(_region_name)]
VantageName = Annotated[str, AfterValidator(_vantage_name)]


class Service(_Strict):
    """The watched application: its latency-routed origin name and CDN name."""

    origin_name: str = Field(description="Latency-routed origin name, e.g. global-alb.example.com")
    cdn_name: str | None = Field(
        None, description="CloudFront name clients use, e.g. app.example.com"
    )
    port: StrictInt = Field(443, ge=1, le=65535, description="HTTPS port of the origin and the CDN")
    health_path: str = Field("/health", description="Path answering the app contract")
    region_header: str = Field("x-origin-region", description="Response header naming the region")
    ca_file: Path | None = Field(
        None, description="PEM bundle to verify certificates against (default: system store)"
    )

    _check_origin = field_validator("origin_name", "cdn_name")(
        lambda v: None if v is None else _host(v)
    )

    @field_validator("health_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("region_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid HTTP header name")
        return value.lower()


class Region(_Strict):
    """One deployment region: its ALB name and/or addresses."""

    alb_name: str | None = Field(None, description="The region's own ALB DNS name")
    addresses: tuple[str, ...] = Field((), description="The region's ALB addresses")
    port: StrictInt | None = Field(None, ge=1, le=65535, description="Overrides service.port")

    @field_validator("alb_name")
    @classmethod
    def _alb(cls, value: str | None) -> str | None:
        return None if value is None else _host(value)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address") from None
        return value

    @model_validator(mode="after")
    def _reachable(self) -> Region:
        if not self.alb_name and not self.addresses:
            raise ValueError("give alb_name or addresses (how to reach the region directly)")
        return self


class VantagePoint(_Strict):
    """A place probes run from."""

    resolver: str = Field(description="Recursive resolver, address[:port]")
    client_subnet: str | None = Field(
        None, description="Client subnet sent as EDNS Client Subnet to the authoritative servers"
    )
    source_address: str | None = Field(None, description="Local address to send probes from")
    region: str | None = Field(None, description="The AWS region this vantage point runs in")
    location: str | None = Field(
        None, description="IATA airport code near the vantage point (nominal closest region)"
    )

    _resolver = field_validator("resolver")(lambda v: _endpoint(v, 53))

    @field_validator("client_subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a subnet such as 198.51.100.0/24") from None

    @field_validator("source_address")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address") from None
        return value

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"[A-Za-z]{3}", value):
            raise ValueError(f"{value!r} is not a three-letter IATA airport code")
        from monitor.domain.geo import airport_location  # the airport table loads only when needed

        if airport_location(value) is None:
            raise ValueError(f"{value.upper()!r} is not a known IATA airport code")
        return value.upper()


class Estimator(StrEnum):
    """How a region's round-trip latency is estimated from its samples.

    ``first_byte`` (default): request sent → first response byte, the minimum over samples; one
    round trip plus the app's own time for the health path. ``handshake``: the TLS handshake (one
    round trip in TLS 1.3, plus crypto). ``connect``: TCP connect; the cleanest round trip on a real
    network, but zero on loopback, so unusable in the lab.
    """

    FIRST_BYTE = "first_byte"
    HANDSHAKE = "handshake"
    CONNECT = "connect"


class Tolerance(_Strict):
    """A worse region within tolerance is not a misroute: penalty ≤ max(absolute, relative×best)."""

    absolute_ms: StrictFloat = Field(10.0, ge=0)
    relative: StrictFloat = Field(0.25, ge=0, le=10)


class ProbeSettings(_Strict):
    samples: StrictInt = Field(3, ge=1, le=50, description="Baseline samples per region")
    dns_timeout_s: StrictFloat = Field(2.0, gt=0, le=60)
    connect_timeout_s: StrictFloat = Field(3.0, gt=0, le=60)
    request_timeout_s: StrictFloat = Field(5.0, gt=0, le=120)
    round_deadline_s: StrictFloat = Field(
        15.0, gt=0, le=600, description="Hard limit for one round"
    )
    pace_ms: StrictFloat = Field(
        10.0, ge=0, le=1000, description="Gap between check starts (bursts distort timings)"
    )
    body_limit_bytes: StrictInt = Field(65536, ge=0, le=16 * 1024 * 1024)
    estimator: Estimator = Estimator.FIRST_BYTE

    @model_validator(mode="after")
    def _deadline(self) -> ProbeSettings:
        if self.round_deadline_s < self.request_timeout_s:
            raise ValueError("round_deadline_s must be at least request_timeout_s")
        return self


class IpRangesSettings(_Strict):
    """AWS ip-ranges.json, used to attribute an address to a region when nothing better exists."""

    file: Path | None = None
    url: str | None = None
    cache_dir: Path | None = None
    max_age_hours: StrictFloat = Field(24.0, gt=0)


class CdnSettings(_Strict):
    path: str = Field("/health", description="Path requested through the CDN")
    cache_bust: bool = Field(True, description="Add a unique query string")
    observe_hit: bool = Field(True, description="Repeat the request once to observe a cache hit")
    pop_regions: dict[str, str] = Field(
        default_factory=dict, description="Pin a POP prefix (e.g. FRA or FRA56-P1) to a region"
    )


class ServeSettings(_Strict):
    interval_s: StrictFloat = Field(60.0, ge=1, le=86400)
    jitter_s: StrictFloat = Field(5.0, ge=0, le=3600)
    misfire_grace_s: StrictFloat = Field(30.0, ge=0)
    hysteresis_rounds: StrictInt = Field(
        3, ge=1, le=100, description="Rounds that must agree to flip"
    )
    listen: str = Field("127.0.0.1:9465")


class CloudWatchSettings(_Strict):
    enabled: bool = False
    namespace: str = "RouteWatch"
    region: str | None = None
    buffer_limit: StrictInt = Field(10000, ge=1)


class AlarmSettings(_Strict):
    sns_topic_arn: str | None = None
    misrouted_datapoints: StrictInt = Field(3, ge=1)
    misrouted_evaluation_periods: StrictInt = Field(5, ge=1)
    period_s: StrictInt = Field(60, ge=10)
    function_name: str = Field("routewatch-probe", description="Lambda name in each region")
    hosted_zone_id: str | None = None


class Config(_Strict):
    """The whole configuration file."""

    service: Service
    regions: dict[RegionName, Region] = Field(min_length=1)
    vantage_points: dict[VantageName, VantagePoint] = Field(min_length=1)
    authoritative: tuple[str, ...] = Field(
        (), description="The zone's authoritative name servers, address[:port]"
    )
    probe: ProbeSettings = ProbeSettings()
    tolerance: Tolerance = Tolerance()
    ip_ranges: IpRangesSettings = IpRangesSettings()
    cdn: CdnSettings = CdnSettings()
    serve: ServeSettings = ServeSettings()
    cloudwatch: CloudWatchSettings = CloudWatchSettings()
    alarms: AlarmSettings = AlarmSettings()

    _auth = field_validator("authoritative")(lambda v: tuple(_endpoint(x, 53) for x in v))

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        problems: list[tuple[tuple[int | str, ...], str]] = []
        for name, vantage in self.vantage_points.items():
            if vantage.region is not None and vantage.region not in self.regions:
                problems.append((("vantage_points", name, "region"),
                                 f"{vantage.region!r} is not a configured region"))
        for pop, region in self.cdn.pop_regions.items():
            if region not in self.regions:
                problems.append((("cdn", "pop_regions", pop),
                                 f"{region!r} is not a configured region"))
            if not re.fullmatch(r"[A-Z]{3}", pop) and not _POP_CODE.match(pop):
                problems.append((("cdn", "pop_regions", pop),
                                 f"{pop!r} is not a POP code such as FRA56-P1"))
        if problems:
            raise reference_error(*problems)
        return self


# --- loading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigProblem:
    """One mistake in a configuration file."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` lists every mistake found."""

    what = "configuration"  # the kind of file, for messages

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    source: str
    warnings: tuple[str, ...] = field(default=())


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping key, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    return _LinedDict(mapping, lines)


class _LinedDict(dict[Any, Any]):
    def __init__(self, items: dict[Any, Any], lines: dict[Any, int]) -> None:
        super().__init__(items)
        self.lines = lines


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)

KeyPath = tuple[int | str, ...]
_REFERENCES = "references"


def reference_error(*problems: tuple[KeyPath, str]) -> PydanticCustomError:
    """A whole-file check's problems, raised from a model validator; each keeps its key path
    (and so its line) in :func:`validation_problems`."""
    summary = "; ".join(f"{format_key_path(loc)}: {msg}" for loc, msg in problems)
    return PydanticCustomError(_REFERENCES, "{summary}",
                               {"summary": summary, "problems": list(problems)})


def line_of(document: Any, loc: KeyPath) -> int | None:
    """The line of the deepest key of ``loc`` found in a document read by :func:`yaml_document`."""
    line = None
    node = document
    for part in loc:
        if isinstance(node, _LinedDict) and part in node:
            line = node.lines.get(part, line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
    return line


def format_key_path(loc: KeyPath) -> str:
    """``('faults', 0, 'kind')`` → ``faults[0].kind``."""
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad mapping key: the key is already there
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def clean_message(error: Any) -> str:
    """A pydantic error message in this project's words."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "too_short":
        return "must not be empty"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def validation_problems(document: Any, exc: ValidationError,
                        prefix: KeyPath = ()) -> list[ConfigProblem]:
    """One :class:`ConfigProblem` per mistake, with key path and line, sorted by line."""
    problems: list[ConfigProblem] = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        if error["type"] == _REFERENCES:
            for ref_loc, message in error["ctx"]["problems"]:
                full = loc + tuple(ref_loc)
                problems.append(ConfigProblem(format_key_path(full), message,
                                              line_of(document, full)))
            continue
        problems.append(ConfigProblem(format_key_path(loc), clean_message(error),
                                      line_of(document, loc)))
    problems.sort(key=lambda p: p.line or 0)
    return problems


def yaml_document(text: str, source: str,
                  error: type[ConfigError] = ConfigError) -> dict[Any, Any]:
    """Parse YAML into a mapping that remembers where each key is; raise ``error`` if it is not
    YAML or not a mapping."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(source, [ConfigProblem("", f"invalid YAML: {problem}", line)]) from None
    if not isinstance(document, dict):
        raise error(source, [ConfigProblem("", "the file must be a mapping of keys", 1)])
    return document


def parse_config(text: str, source: str = "<config>") -> LoadedConfig:
    """Parse and validate YAML text; raise :class:`ConfigError` listing every problem."""
    document = yaml_document(text, source)
    try:
        config = Config.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(document, exc)) from None
    return LoadedConfig(config, source, tuple(production_warnings(config)))


def read_text_file(path: Path, error: type[ConfigError] = ConfigError) -> str:
    """A file's UTF-8 text; raise ``error`` naming the file when it cannot be read or is not
    text (a directory, a binary file)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(str(path), [ConfigProblem("", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise error(str(path), [ConfigProblem(
            "", f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})")],
        ) from None


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate a configuration file."""
    file = Path(path)
    loaded = parse_config(read_text_file(file), str(file))
    config = loaded.config
    if config.service.ca_file is not None and not config.service.ca_file.is_absolute():
        # a relative CA path is relative to the config file, so configs can travel with their CA
        ca_file = file.parent / config.service.ca_file
        service = config.service.model_copy(update={"ca_file": ca_file})
        config = config.model_copy(update={"service": service})
        loaded = LoadedConfig(config, loaded.source, loaded.warnings)
    return loaded


def local_vantage_points(config: Config, aws_region: str | None = None) -> list[str]:
    """The vantage points that run on this machine: those without a ``region`` (a laptop, a CI
    runner, a server), plus the one whose ``region`` is the region this runs in, if any. A
    vantage point with a ``region`` elsewhere is a regional probe: measuring it from here would
    label this machine's numbers with its name."""
    return [name for name, vantage in config.vantage_points.items()
            if vantage.region is None or vantage.region == aws_region]


def production_warnings(config: Config) -> list[str]:
    """Legal settings that will fail in production."""
    warnings = []
    names = {"service.origin_name": config.service.origin_name,
             "service.cdn_name": config.service.cdn_name}
    for key, name in names.items():
        if name and "_" in name:
            warnings.append(
                f"{key}: {name!r} contains '_': public CAs (ACM included) issue no certificate "
                f"for it, so HTTPS to it (e.g. from CloudFront) fails; use "
                f"{name.replace('_', '-')!r}"
            )
    from monitor.domain.geo import REGION_LOCATIONS

    for region in config.regions:
        if region not in REGION_LOCATIONS:
            warnings.append(f"regions.{region}: not an AWS region routewatch knows (a typo?); "
                            f"distance rules (cdn, location) cannot use it")
    for name, vantage in config.vantage_points.items():
        if vantage.client_subnet is None and config.authoritative:
            warnings.append(
                f"vantage_points.{name}: no client_subnet, so the authoritative query carries "
                f"no ECS and Route 53 answers for this machine's address instead"
            )
    return warnings


def config_schema() -> dict[str, Any]:
    """JSON Schema of the configuration file, for editors."""
    return Config.model_json_schema()


PopCode = Annotated[str, Field(pattern=_POP_CODE.pattern)]
