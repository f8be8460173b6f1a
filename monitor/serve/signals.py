"""The signals ``serve`` answers: SIGTERM and SIGINT stop, SIGHUP reloads."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["install_signals", "remove_signals"]


def install_signals(loop: asyncio.AbstractEventLoop, *, stop: Callable[[], None],
                    reload: Callable[[], Coroutine[Any, Any, object]]) -> list[signal.Signals]:
    """Install the handlers where the loop can (the main thread); the ones installed."""
    installed = []
    handlers: dict[signal.Signals, Callable[[], object]] = {
        signal.SIGTERM: stop,
        signal.SIGINT: stop,
        signal.SIGHUP: lambda: loop.create_task(reload()),
    }
    for signum, handler in handlers.items():
        try:
            loop.add_signal_handler(signum, handler)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            continue
        installed.append(signum)
    return installed


def remove_signals(loop: asyncio.AbstractEventLoop, installed: list[signal.Signals]) -> None:
    for signum in installed:
        loop.remove_signal_handler(signum)
