"""Lab scenarios: the simulated world as YAML, validated by pydantic v2 (unknown keys rejected).

A scenario names the regions, the vantage points with their round trip to every region, the
faults active at start and optional settings copied into the written routewatch config.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

# the config's own YAML loader and message formatting, so scenario errors read like config errors
from monitor.config import IpFamily, ProbeSettings, Tolerance
from monitor.config.loader import (
    ConfigError,
    ConfigProblem,
    clean_message,
    empty_entries,
    format_key_path,
    read_text_file,
    reference_error,
    validation_problems,
    yaml_document,
)
from monitor.config.validation import model_of
from monitor.domain.patterns import POP_CODE as _POP_CODE
from monitor.domain.patterns import REGION_NAME as _REGION_NAME

# A scenario's probe and tolerance settings, validated by the configuration's own rules and kept
# as its validator's models, which know the keys the scenario wrote: those alone are copied into
# the written config (what the scenario leaves out keeps the lab's choice, e.g. first_byte).
if TYPE_CHECKING:
    ProbeOverrides = BaseModel
    ToleranceOverrides = BaseModel
else:
    ProbeOverrides = model_of(ProbeSettings)
    ToleranceOverrides = model_of(Tolerance)

__all__ = [
    "EdgeSpec",
    "Fault",
    "FaultKind",
    "LabService",
    "RegionSpec",
    "Scenario",
    "ScenarioError",
    "VantageSpec",
    "builtin_scenarios",
    "load_scenario",
    "parse_scenario",
]

MAX_REGIONS = 200  # each gets 127.20.<i>.1; the octet bounds the count
MAX_VANTAGE_POINTS = 200
MAX_EDGES = 200
MAX_SERVICES = 200
MAX_RTT_MS = 2000.0

_LABEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)+"
                        r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$")
_IATA = re.compile(r"^[A-Za-z]{3}$")
_SCENARIO_DIR = "scenarios"


class ScenarioError(ConfigError):
    """A scenario that cannot be used; ``problems`` lists every mistake (key path, line)."""

    what = "lab scenario"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _iata(value: str | None) -> str | None:
    if value is not None and not _IATA.match(value):
        raise ValueError(f"{value!r} is not a three-letter IATA airport code")
    return None if value is None else value.upper()


def _lab_host(value: str) -> str:
    value = value.rstrip(".").lower()
    if not _HOST_NAME.match(value):
        raise ValueError(f"{value!r} is not a DNS host name with at least two labels")
    return value


class LabService(_Strict):
    """The names the lab's world serves (certificate, DNS zone, app contract)."""

    origin_name: str = "global-alb.example.com"
    cdn_name: str = "app.example.com"
    health_path: str = "/health"
    region_header: str = "x-origin-region"

    _host = field_validator("origin_name", "cdn_name")(lambda v: _lab_host(v))

    @field_validator("health_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(c in value for c in " ?#"):
            raise ValueError("must start with '/' and hold no space, '?' or '#'")
        return value

    @field_validator("region_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9-]+", value):
            raise ValueError(f"{value!r} is not a valid HTTP header name")
        return value.lower()


class LabServiceName(_Strict):
    """One of a world's ``services``: its own latency-routed origin name, served by every
    region's origin (health path, header and CDN are the world's ``service`` settings)."""

    origin_name: str

    _host = field_validator("origin_name")(lambda v: _lab_host(v))


class RegionSpec(_Strict):
    """One region's origin: what its health JSON says, how long the app takes, and its TLS."""

    dynamodb_read_ms: float = Field(2.5, ge=0, le=10000)
    processing_ms: float = Field(0.0, ge=0, le=10000, description="App time before answering")
    tls_max_version: Literal["1.2", "1.3"] = Field(
        "1.3", description="Highest TLS version the origin accepts (1.2: a TLS 1.2-only policy)")
    cert_valid_days: float | None = Field(
        None, gt=0, le=3650, description="The origin's certificate expires this many days after "
        "the world starts (default: the lab CA's long-lived certificate)")


class VantageSpec(_Strict):
    """A place probes run from: its round trip (ms) to every region."""

    latency_ms: dict[str, float]
    latency_v6_ms: dict[str, float] | None = Field(
        None, description="Round trips over IPv6 in a dual-stack world (default: latency_ms)")
    location: str | None = None
    region: str | None = None
    client_subnet: str | None = Field(None, description="Default 198.18.<j>.0/24")

    _location = field_validator("location")(_iata)

    @field_validator("latency_ms", "latency_v6_ms")
    @classmethod
    def _rtts(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for region, rtt in (value or {}).items():
            if not 0 <= rtt <= MAX_RTT_MS:
                raise ValueError(f"{region}: {rtt} ms is not between 0 and {MAX_RTT_MS:g} ms")
        return value

    @field_validator("client_subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not a subnet such as 198.18.1.0/24") from None
        if network.version != 4:
            raise ValueError("the lab uses IPv4 client subnets")
        return str(network)


class EdgeSpec(_Strict):
    """A CloudFront-like edge (POP): its code, location and round trip (ms) to every region."""

    pop: str
    latency_ms: dict[str, float]
    location: str | None = Field(None, description="IATA code; default: the POP's first letters")
    vantage_latency_ms: dict[str, float] = Field(
        default_factory=dict, description="Round trip from vantage points to this edge"
    )

    @field_validator("pop")
    @classmethod
    def _pop(cls, value: str) -> str:
        if not _POP_CODE.match(value):
            raise ValueError(f"{value!r} is not a POP code such as FRA56-P1")
        return value

    _location = field_validator("location")(_iata)

    @field_validator("latency_ms", "vantage_latency_ms")
    @classmethod
    def _rtts(cls, value: dict[str, float]) -> dict[str, float]:
        for name, rtt in value.items():
            if not 0 <= rtt <= MAX_RTT_MS:
                raise ValueError(f"{name}: {rtt} ms is not between 0 and {MAX_RTT_MS:g} ms")
        return value


class FaultKind(StrEnum):
    MISROUTE = "misroute"
    REGION_DOWN = "region_down"
    BLACKHOLE = "blackhole"
    SLOW = "slow"
    HTTP_5XX = "http_5xx"
    DNS_SERVFAIL = "dns_servfail"
    DNS_TIMEOUT = "dns_timeout"
    DNS_GARBAGE = "dns_garbage"
    DNS_TRUNCATE = "dns_truncate"
    HEADER_MISMATCH = "header_mismatch"
    DYNAMODB_REMOTE = "dynamodb_remote"
    EDGE_DOWN = "edge_down"
    EDGE_STALE_ORIGIN = "edge_stale_origin"
    EDGE_BAD_HEADERS = "edge_bad_headers"


class EdgeHeaderFault(StrEnum):
    """What ``edge_bad_headers`` breaks in the edge's answers."""

    MALFORMED_SERVER_TIMING = "malformed_server_timing"
    NO_POP = "no_pop"


# kind → (required fields, optional fields); any other field set is a mistake
_FAULT_FIELDS: dict[FaultKind, tuple[frozenset[str], frozenset[str]]] = {
    FaultKind.MISROUTE: (frozenset({"vantage", "answer"}), frozenset({"family", "service"})),
    FaultKind.REGION_DOWN: (frozenset({"region"}), frozenset({"dns_healthy"})),
    FaultKind.BLACKHOLE: (frozenset({"region"}), frozenset({"dns_healthy"})),
    FaultKind.SLOW: (frozenset({"region", "extra_ms"}), frozenset({"vantage", "family"})),
    FaultKind.HTTP_5XX: (frozenset({"region"}), frozenset({"status", "dns_healthy"})),
    FaultKind.DNS_SERVFAIL: (frozenset(), frozenset({"vantage"})),
    FaultKind.DNS_TIMEOUT: (frozenset(), frozenset({"vantage"})),
    FaultKind.DNS_GARBAGE: (frozenset(), frozenset({"vantage"})),
    FaultKind.DNS_TRUNCATE: (frozenset(), frozenset({"vantage"})),
    FaultKind.HEADER_MISMATCH: (frozenset({"region", "claims"}), frozenset()),
    FaultKind.DYNAMODB_REMOTE: (frozenset({"region", "dynamodb_region"}), frozenset({"read_ms"})),
    FaultKind.EDGE_DOWN: (frozenset({"edge"}), frozenset()),
    FaultKind.EDGE_STALE_ORIGIN: (frozenset({"edge"}), frozenset({"answer"})),
    FaultKind.EDGE_BAD_HEADERS: (frozenset({"edge", "headers"}), frozenset()),
}


def fault_usage(kind: FaultKind) -> str:
    """How to write one fault of ``kind`` as ``lab fault add`` pairs (optional ones in [])."""
    required, optional = _FAULT_FIELDS[kind]
    return " ".join([f"kind={kind.value}", *(f"{name}=…" for name in sorted(required)),
                     *(f"[{name}=…]" for name in sorted(optional))])


class Fault(_Strict):
    """One fault of the world, switchable at run time.

    ``misroute`` (vantage, answer, optional family, optional service): the DNS answers ``answer``
    for that vantage point (or edge) while it is healthy; with ``family`` (ipv4: A, ipv6: AAAA)
    only in that family's answer; with ``service`` only for that one of the world's
    ``services`` (default: every origin name). ``region_down`` (region): its listener is closed
    (connection refused).
    ``blackhole`` (region): TCP is accepted, nothing is forwarded or answered. Both also fail the
    region's DNS health check unless ``dns_healthy: true``. ``slow`` (region, extra_ms, optional
    vantage, optional family): extra round-trip time. ``http_5xx`` (region, status=503,
    dns_healthy): the origin answers an error. ``dns_servfail`` / ``dns_timeout`` /
    ``dns_garbage`` / ``dns_truncate`` (optional vantage): SERVFAIL, no answer, malformed bytes,
    or TC over UDP.
    ``header_mismatch`` (region, claims): the origin claims to be another region.
    ``dynamodb_remote`` (region, dynamodb_region, read_ms): the data path leaves the region.
    ``edge_down`` (edge): the edge's listener is closed. ``edge_stale_origin`` (edge, optional
    answer): the edge keeps using a region it resolved earlier (``answer``, default: the region
    it resolved when the fault started) and resolves no more. ``edge_bad_headers`` (edge,
    headers): the edge sends a malformed ``Server-Timing`` (``malformed_server_timing``) or no POP
    at all (``no_pop``).
    """

    kind: FaultKind
    region: str | None = None
    vantage: str | None = None
    edge: str | None = None
    answer: str | None = None
    extra_ms: float | None = Field(None, ge=0, le=MAX_RTT_MS)
    status: int | None = Field(None, ge=500, le=599)
    dns_healthy: bool | None = None
    claims: str | None = None
    dynamodb_region: str | None = None
    read_ms: float | None = Field(None, ge=0, le=10000)
    headers: EdgeHeaderFault | None = None
    family: IpFamily | None = None
    service: str | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Fault:
        required, optional = _FAULT_FIELDS[self.kind]
        given = {name for name in self.model_fields_set if getattr(self, name) is not None}
        given.discard("kind")
        problems = []
        missing = sorted(required - given)
        if missing:
            problems.append(f"{self.kind} needs {', '.join(missing)}")
        extra = sorted(given - required - optional)
        if extra:
            problems.append(f"{self.kind} takes no {', '.join(extra)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def as_dict(self) -> dict[str, Any]:
        """The fault as YAML/JSON, with only the keys that were given."""
        return self.model_dump(mode="json", exclude_none=True)

    def __str__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.as_dict().items() if k != "kind")
        return f"{self.kind}({fields})"


class Scenario(_Strict):
    """A simulated world: regions, vantage points (and edges) with round trips, faults."""

    name: str | None = Field(None, description="Default: the file name without .yaml")
    description: str = Field("", description="One paragraph, shown by `lab list` and the demo")
    service: LabService = LabService()
    services: dict[str, LabServiceName] | None = Field(
        None, min_length=1, max_length=MAX_SERVICES,
        description="Several watched applications by name, each its own origin name on the "
                    "same regions (the written config lists them as services; the CDN path "
                    "is left out)")
    regions: dict[str, RegionSpec] = Field(min_length=1, max_length=MAX_REGIONS)
    vantage_points: dict[str, VantageSpec] = Field(min_length=1, max_length=MAX_VANTAGE_POINTS)
    edges: dict[str, EdgeSpec] = Field(default_factory=dict, max_length=MAX_EDGES)
    faults: tuple[Fault, ...] = ()
    ipv6: bool = Field(False, description="Dual-stack: regions and vantage points get IPv6 "
                       "addresses (fd00::/16) too, the DNS answers AAAA; the addresses must be on "
                       "lo, so run it in a network namespace of its own")
    probe: ProbeOverrides | None = Field(None, description="Copied into the written config")
    tolerance: ToleranceOverrides | None = Field(
        None, description="Copied into the written config")

    # `us-east-1:` with nothing after it is a region with defaults
    _empty_regions = field_validator("regions", mode="before")(empty_entries)

    @field_validator("regions")
    @classmethod
    def _region_names(cls, value: dict[str, RegionSpec]) -> dict[str, RegionSpec]:
        for name in value:
            if not _REGION_NAME.match(name):
                raise ValueError(f"{name!r} is not an AWS region name such as eu-west-1")
        return value

    @field_validator("vantage_points", "edges", "services")
    @classmethod
    def _label_names(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for name in value or {}:
            if not _LABEL_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid name (lower case, digits, - and _)")
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> Scenario:
        items: list[tuple[tuple[int | str, ...], str]] = []
        regions = set(self.regions)
        for name, vantage in self.vantage_points.items():
            loc: tuple[int | str, ...] = ("vantage_points", name)
            missing = [r for r in self.regions if r not in vantage.latency_ms]
            if missing:
                items.append(((*loc, "latency_ms"), f"no round trip to {', '.join(missing)}"))
            for region in vantage.latency_ms:
                if region not in regions:
                    items.append(((*loc, "latency_ms", region), "not a region of this scenario"))
            for region in vantage.latency_v6_ms or {}:
                if region not in regions:
                    items.append(((*loc, "latency_v6_ms", region),
                                  "not a region of this scenario"))
            if vantage.region is not None and vantage.region not in regions:
                items.append(((*loc, "region"), f"{vantage.region!r} is not a region"))
        subnets: dict[str, str] = {}
        for name, subnet in self.client_subnets().items():
            if subnet in subnets:
                items.append((("vantage_points", name, "client_subnet"),
                              f"{subnet} is already the subnet of {subnets[subnet]}"))
            subnets[subnet] = name
        pops: dict[str, str] = {}
        for name, edge in self.edges.items():
            loc = ("edges", name)
            if name in self.vantage_points:
                items.append((loc, "an edge cannot share its name with a vantage point"))
            missing = [r for r in self.regions if r not in edge.latency_ms]
            if missing:
                items.append(((*loc, "latency_ms"), f"no round trip to {', '.join(missing)}"))
            for region in edge.latency_ms:
                if region not in regions:
                    items.append(((*loc, "latency_ms", region), "not a region of this scenario"))
            for seen_from in edge.vantage_latency_ms:
                if seen_from not in self.vantage_points:
                    items.append(((*loc, "vantage_latency_ms", seen_from),
                                  "not a vantage point of this scenario"))
            if edge.pop in pops:
                items.append(((*loc, "pop"), f"{edge.pop} is already the POP of {pops[edge.pop]}"))
            pops[edge.pop] = name
        owners: dict[str, str] = {}
        for name, own in (self.services or {}).items():
            if own.origin_name in owners:
                items.append((("services", name, "origin_name"),
                              f"{own.origin_name} is already the origin name of "
                              f"{owners[own.origin_name]}"))
            owners[own.origin_name] = name
        for index, fault in enumerate(self.faults):
            items.extend((("faults", index, *loc), msg) for loc, msg in self.fault_problems(fault))
        if items:
            raise reference_error(*items)
        return self

    def fault_problems(self, fault: Fault) -> list[tuple[tuple[str, ...], str]]:
        """Names a fault gives that this scenario does not have: (key path, message)."""
        items: list[tuple[tuple[str, ...], str]] = []
        for key in ("region", "answer", "claims", "dynamodb_region"):
            value = getattr(fault, key)
            if value is not None and value not in self.regions:
                items.append(((key,), f"{value!r} is not a region of this scenario"))
        if fault.vantage is not None and fault.vantage not in (*self.vantage_points,
                                                               *self.edges):
            kinds = "vantage point or edge" if self.edges else "vantage point"
            items.append((("vantage",), f"{fault.vantage!r} is not a {kinds} of this scenario"))
        if fault.service is not None and fault.service not in (self.services or {}):
            items.append((("service",), f"{fault.service!r} is not one of this scenario's "
                                        f"services"))
        if fault.edge is not None and fault.edge not in self.edges:
            items.append((("edge",), f"{fault.edge!r} is not an edge of this scenario"))
        if fault.family is IpFamily.IPV6 and not self.ipv6:
            items.append((("family",), "this world is IPv4 only (set ipv6: true)"))
        if fault.kind == FaultKind.HEADER_MISMATCH and fault.claims == fault.region:
            items.append((("claims",), "must name a region other than the serving one"))
        return items

    def check_faults(self, faults: list[Fault | dict[str, Any]]) -> list[Fault]:
        """Validate run-time faults against this scenario; raise ScenarioError listing problems."""
        result: list[Fault] = []
        problems: list[ConfigProblem] = []
        for index, item in enumerate(faults):
            try:
                fault = item if isinstance(item, Fault) else Fault.model_validate(item)
            except ValidationError as exc:
                problems.extend(ConfigProblem(format_key_path(("faults", index, *e["loc"])),
                                              clean_message(e)) for e in exc.errors())
                continue
            problems.extend(ConfigProblem(format_key_path(("faults", index, *loc)), msg)
                            for loc, msg in self.fault_problems(fault))
            result.append(fault)
        if problems:
            raise ScenarioError("faults", problems)
        return result

    def origin_names(self) -> dict[str, str | None]:
        """Every origin name the world's DNS answers → the service it belongs to (None: the
        world's single ``service``)."""
        names: dict[str, str | None] = {self.service.origin_name: None}
        names.update({own.origin_name: name for name, own in (self.services or {}).items()})
        return names

    def client_subnets(self) -> dict[str, str]:
        """Vantage point → the client subnet it sends as ECS (default 198.18.<j>.0/24)."""
        return {name: vantage.client_subnet or f"198.18.{index}.0/24"
                for index, (name, vantage) in enumerate(self.vantage_points.items(), start=1)}

    def nearest_edge(self, vantage: str) -> str | None:
        """The edge with the lowest round trip from a vantage point (None: no edge gives one)."""
        known = {name: edge.vantage_latency_ms[vantage] for name, edge in self.edges.items()
                 if vantage in edge.vantage_latency_ms}
        return min(known, key=known.__getitem__) if known else None

    def latency(self, name: str, family: IpFamily = IpFamily.IPV4) -> dict[str, float]:
        """A vantage point's (or edge's) round trips to every region over ``family``."""
        vantage = self.vantage_points.get(name)
        if vantage is not None:
            if family is IpFamily.IPV6 and vantage.latency_v6_ms is not None:
                return {**vantage.latency_ms, **vantage.latency_v6_ms}
            return vantage.latency_ms
        return self.edges[name].latency_ms

    def nearest_region(self, vantage: str) -> str:
        """The region with the lowest round trip from a vantage point or edge, ties by order."""
        spec = self.vantage_points.get(vantage) or self.edges[vantage]
        return min(self.regions, key=lambda r: spec.latency_ms[r])


def parse_scenario(text: str, source: str = "<scenario>", name: str | None = None) -> Scenario:
    """Parse and validate scenario YAML; raise :class:`ScenarioError` listing every problem."""
    document = yaml_document(text, source, ScenarioError)
    try:
        scenario = Scenario.model_validate(document)
    except ValidationError as exc:
        raise ScenarioError(source, validation_problems(document, exc)) from None
    if scenario.name is None and name is not None:
        scenario = scenario.model_copy(update={"name": name})
    return scenario


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    folder = resources.files("monitor.lab").joinpath(_SCENARIO_DIR)
    return sorted(item.name.removesuffix(".yaml") for item in folder.iterdir()
                  if item.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a scenario YAML file by path."""
    text_name = str(name_or_path)
    path = Path(name_or_path)
    looks_like_file = isinstance(name_or_path, Path) or "/" in text_name or path.suffix in (
        ".yaml", ".yml") or path.exists()
    if not looks_like_file:
        resource = resources.files("monitor.lab").joinpath(_SCENARIO_DIR, f"{text_name}.yaml")
        if not resource.is_file():
            known = ", ".join(builtin_scenarios())
            raise ScenarioError(text_name, [ConfigProblem(
                "", f"no built-in scenario {text_name!r} (built-in: {known}) and no such file")])
        return parse_scenario(resource.read_text(encoding="utf-8"), f"scenario {text_name}",
                              text_name)
    return parse_scenario(read_text_file(path, ScenarioError), str(path), path.stem)
