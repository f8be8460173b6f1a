"""A small DOM of the routing page (html.parser), for the page's unit and browser tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["Element", "cells", "misrouted_paths", "parse_html"]

_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, match: Callable[[Element], bool]) -> list[Element]:
        return [e for e in self.iter() if match(e)]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Element:
    builder = _Builder()
    builder.feed(text)
    builder.close()
    return builder.root


def cells(root: Element) -> list[Element]:
    """The latency matrix's cells (one per vantage point × region)."""
    return root.find_all(lambda e: e.tag == "td" and "cell" in e.classes())


def misrouted_paths(root: Element) -> set[tuple[str, str]]:
    """(vantage point, path) of every path row the page marks misrouted, with its text marker."""
    found = set()
    for section in root.find_all(lambda e: e.tag == "section" and "vantage" in e.classes()):
        for row in section.find_all(lambda e: e.tag == "tr" and "path" in e.classes()):
            if row.attrs.get("data-state") == "misrouted":
                assert "✗ misrouted" in row.text(), row.text()
                found.add((section.attrs["data-vantage"], row.attrs["data-path"]))
    return found
