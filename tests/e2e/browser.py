"""Headless Chromium (Debian's ``chromium``) for the routing page's browser tests, and a PNG reader.

Every call starts a fresh browser with a temporary profile, no network of its own (no QUIC, no
background, component-update or sync traffic), and waits for it to exit. The PNG reader is pure
Python (zlib and the five PNG filters), enough to tell a drawn page from a blank one.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from prometheus_server import require_binary

__all__ = ["Chromium", "Image", "read_png"]

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")


class Chromium:
    """``Chromium.require()`` skips (not root) or fails (root) when Debian's chromium is missing."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    @classmethod
    def require(cls) -> Chromium:
        return cls(require_binary("chromium", "chromium"))

    def _run(self, *args: str) -> str:
        with tempfile.TemporaryDirectory(prefix="routewatch-chromium-") as profile:
            run = subprocess.run([self.binary, *FLAGS, f"--user-data-dir={profile}", *args],
                                 capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout

    def screenshot(self, url: str, out: Path, width: int = 1280, height: int = 900) -> Path:
        self._run(f"--window-size={width},{height}", f"--screenshot={out}", url)
        assert out.is_file(), f"chromium wrote no screenshot of {url}"
        return out

    def dump_dom(self, url: str) -> str:
        """The DOM after the page loaded (and its scripts ran), serialised."""
        return self._run("--dump-dom", url)


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: tuple[bytes, ...]

    def pixels(self, row_step: int = 1) -> list[bytes]:
        c = self.channels
        return [row[i:i + 3] for row in self.rows[::row_step] for i in range(0, len(row), c)]

    def colour_spread(self, row_step: int = 4) -> tuple[int, float]:
        """(distinct colours, share of pixels not of the most common colour) on sampled rows."""
        counts = Counter(self.pixels(row_step))
        total = sum(counts.values())
        return len(counts), 1 - counts.most_common(1)[0][1] / total


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _unfilter(kind: int, line: bytearray, prior: bytes, bpp: int) -> bytearray:
    if kind == 1:
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 255
    elif kind == 2:
        line = bytearray((x + y) & 255 for x, y in zip(line, prior, strict=True))
    elif kind == 3:
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prior[i]) >> 1)) & 255
    elif kind == 4:
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            upper_left = prior[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + _paeth(left, prior[i], upper_left)) & 255
    elif kind != 0:
        raise ValueError(f"bad PNG filter type {kind}")
    return line


def read_png(path: Path) -> Image:
    """An 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    offset, idat, header = 8, bytearray(), b""
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {colour})")
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows: list[bytes] = []
    prior = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), prior,
                         channels)
        prior = bytes(line)
        rows.append(prior)
    return Image(width, height, channels, tuple(rows))
