"""The YAML side of :mod:`monitor.config.loader`, imported only when a file is parsed (a Lambda
cold start with a pre-validated config never parses YAML, and PyYAML costs ~10 ms to import)."""

from __future__ import annotations

from typing import Any

import yaml

from monitor.config.loader import MAX_DEPTH, LinedDict

__all__ = ["load"]


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping key, for error messages, and refuses
    what would otherwise escape as a traceback: deep nesting, unhashable keys, huge integers."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_int(loader: _LineLoader, node: yaml.ScalarNode) -> int:
    try:
        return int(loader.construct_yaml_int(node))
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"integer {str(node.value)[:20]}… is too large", node.start_mark) from None


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value, not a list or a mapping",
                key_node.start_mark) from None
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    return LinedDict(mapping, lines)


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)
_LineLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)



def load(text: str) -> Any:
    """Parse ``text`` (raises :class:`yaml.YAMLError`, with a mark where known)."""
    return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
