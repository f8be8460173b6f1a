"""A line-aware YAML loader and the problem reports built on it, shared by the configuration
and the lab's scenario files: every mistake comes back with its key path and line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from probes.errors import RoutewatchError
from probes.records import record

if TYPE_CHECKING:  # pydantic loads with the validator, not with the configuration's types
    from pydantic import ValidationError
    from pydantic_core import PydanticCustomError

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "KeyPath",
    "clean_message",
    "empty_entries",
    "format_key_path",
    "line_of",
    "read_text_file",
    "reference_error",
    "validation_problems",
    "yaml_document",
]




@record
class ConfigProblem:
    """One mistake in a configuration file."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class ConfigError(RoutewatchError):
    """A configuration that cannot be used; ``problems`` lists every mistake found."""

    what = "configuration"  # the kind of file, for messages

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(str(p) for p in problems))


MAX_DEPTH = 64  # no routewatch file nests deeper than ~6; a deeper one is a mistake or an attack
MAX_FILE_BYTES = 1024 * 1024


class LinedDict(dict[Any, Any]):
    """A mapping read from YAML that remembers the line of each key (``lines``)."""

    def __init__(self, items: dict[Any, Any], lines: dict[Any, int]) -> None:
        super().__init__(items)
        self.lines = lines



KeyPath = tuple[int | str, ...]
_REFERENCES = "references"


def reference_error(*problems: tuple[KeyPath, str]) -> PydanticCustomError:
    """A whole-file check's problems, raised from a section's ``check``; each keeps its key path
    (and so its line) in :func:`validation_problems`."""
    from pydantic_core import PydanticCustomError

    summary = "; ".join(f"{format_key_path(loc)}: {msg}" for loc, msg in problems)
    return PydanticCustomError(_REFERENCES, "{summary}",
                               {"summary": summary, "problems": list(problems)})


def empty_entries(value: Any) -> Any:
    """A mapping whose entries written with nothing after them (``us-east-1:``) are empty
    mappings (an entry with its defaults); anything else as it is (a pydantic ``before``
    validator)."""
    if isinstance(value, dict):
        return {k: ({} if v is None else v) for k, v in value.items()}
    return value


def line_of(document: Any, loc: KeyPath) -> int | None:
    """The line of the deepest key of ``loc`` found in a document read by :func:`yaml_document`."""
    line = None
    node = document
    for part in loc:
        if isinstance(node, LinedDict) and part in node:
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
    import yaml

    from monitor.config import _yaml

    try:
        document = _yaml.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(source, [ConfigProblem("", f"invalid YAML: {problem}", line)]) from None
    if not isinstance(document, dict):
        raise error(source, [ConfigProblem("", "the file must be a mapping of keys", 1)])
    return document


def read_text_file(path: Path, error: type[ConfigError] = ConfigError) -> str:
    """A file's UTF-8 text; raise ``error`` naming the file when it cannot be read or is not
    text (a directory, a binary file, a device, over :data:`MAX_FILE_BYTES`)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # bounded: /dev/zero must not hang the load
        if len(data) > MAX_FILE_BYTES:
            raise error(str(path), [ConfigProblem(
                "", f"larger than {MAX_FILE_BYTES // 1024} KiB: not a routewatch file")])
        return data.decode("utf-8")
    except OSError as exc:
        raise error(str(path), [ConfigProblem("", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise error(str(path), [ConfigProblem(
            "", f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})")],
        ) from None
