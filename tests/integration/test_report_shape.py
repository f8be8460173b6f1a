"""The JSON document keeps its shape: the demo world's document has exactly the keys (in the same
order) it had before results were typed (tests/data/demo-document-keys.json, captured then)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from conftest import LabWorld
from lab_client import calm, document_rows, injected_rows

from monitor.config import load_config
from monitor.core.report import round_document
from monitor.round.run import run_round

KEYS = Path(__file__).parent.parent / "data" / "demo-document-keys.json"


def keys(value: Any) -> Any:
    """The key structure of a JSON value: objects keep their keys in order, lists merge the
    structures of their items, everything else is null."""
    if isinstance(value, dict):
        return {key: keys(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: list[Any] = []
        for item in value:
            if (shape := keys(item)) not in merged:
                merged.append(shape)
        return merged
    return None


def test_the_demo_document_keeps_its_keys(lab_world: LabWorld) -> None:
    world = lab_world("demo")
    config = load_config(world.config_path).config
    # a round the machine did not disturb: a disturbed one rightly carries other keys
    document = calm(lambda: json.loads(json.dumps(round_document(asyncio.run(run_round(config))))),
                    document_rows, injected_rows(world.scenario))
    expected = json.loads(KEYS.read_text(encoding="utf-8"))
    assert json.dumps(keys(document), indent=1) == json.dumps(expected, indent=1)
