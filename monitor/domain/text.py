"""Text from the network, made safe to show to people: one function, used by every human-facing
output (the check table, serve's text log lines, details that quote a peer).

Every character Python does not call printable — control characters (C0, DEL, C1: ESC
sequences, newlines, carriage returns, backspaces), format characters that reorder or hide text
(bidi overrides and isolates, zero-width characters), separators other than the space, private
use and unassigned code points, lone surrogates (which no terminal encoding accepts) — becomes a
visible escape such as ``\\x1b``, ``\\n`` or ``\\u202e``. Rich markup is escaped by the table
renderer (:mod:`monitor.cli.render`) where it parses markup. JSON output keeps the original text:
``json`` escapes it already.
"""

from __future__ import annotations

__all__ = ["printable"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with every unsafe character escaped (see the module docstring); with ``limit``,
    cut to that many characters of the original, ``…`` marking the cut."""
    cut = limit is not None and len(text) > limit
    if cut:
        text = text[:limit]
    shown = text if text.isprintable() else "".join(c if c.isprintable() else _escape(c)
                                                    for c in text)
    return shown + "…" if cut else shown
