"""Shared by the AWS-side tests: a checker for the EMF specification."""

from __future__ import annotations

import math
from typing import Any

# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
EMF_UNITS = frozenset({
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
})
EMF_MAX_METRICS_PER_DIRECTIVE = 100
EMF_MAX_DIMENSIONS_PER_SET = 30
EMF_MAX_VALUES_PER_METRIC = 100


def validate_emf(document: Any) -> list[str]:
    """Every way ``document`` breaks the EMF specification (empty when it is valid)."""
    problems: list[str] = []
    if not isinstance(document, dict):
        return ["the root is not a JSON object"]
    meta = document.get("_aws")
    if not isinstance(meta, dict):
        return ["_aws is missing or not an object"]
    stamp = meta.get("Timestamp")
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        problems.append(f"_aws.Timestamp {stamp!r} is not an integer")
    elif not 1e12 < stamp < 1e13:
        problems.append(f"_aws.Timestamp {stamp} is not epoch milliseconds")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*problems, "_aws.CloudWatchMetrics is not a non-empty array"]
    for index, directive in enumerate(directives):
        where = f"CloudWatchMetrics[{index}]"
        if not isinstance(directive, dict):
            problems.append(f"{where} is not an object")
            continue
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str) or not 1 <= len(namespace) <= 1024 \
                or not namespace.strip():
            problems.append(f"{where}.Namespace {namespace!r} is not a 1-1024 character string")
        dimension_sets = directive.get("Dimensions")
        if not isinstance(dimension_sets, list):
            problems.append(f"{where}.Dimensions is not an array")
            dimension_sets = []
        for set_index, dimension_set in enumerate(dimension_sets):
            if not isinstance(dimension_set, list):
                problems.append(f"{where}.Dimensions[{set_index}] is not an array")
                continue
            if len(dimension_set) > EMF_MAX_DIMENSIONS_PER_SET:
                problems.append(f"{where}.Dimensions[{set_index}] has {len(dimension_set)} keys")
            for key in dimension_set:
                value = document.get(key)
                if not isinstance(value, str) or not value or len(value) > 1024:
                    problems.append(f"dimension {key!r} has no string value at the top level")
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list) or not metrics:
            problems.append(f"{where}.Metrics is not a non-empty array")
            continue
        if len(metrics) > EMF_MAX_METRICS_PER_DIRECTIVE:
            problems.append(f"{where}.Metrics has {len(metrics)} metrics (max 100)")
        for definition in metrics:
            name = definition.get("Name") if isinstance(definition, dict) else None
            if not isinstance(name, str) or not 1 <= len(name) <= 1024:
                problems.append(f"{where}: metric definition without a valid Name")
                continue
            unit = definition.get("Unit")
            if unit is not None and unit not in EMF_UNITS:
                problems.append(f"{name}: unit {unit!r} is not a CloudWatch unit")
            if definition.get("StorageResolution", 60) not in (1, 60):
                problems.append(f"{name}: StorageResolution must be 1 or 60")
            value = document.get(name)
            values = value if isinstance(value, list) else [value]
            if not values or len(values) > EMF_MAX_VALUES_PER_METRIC:
                problems.append(f"{name}: {len(values)} values (1-100 allowed)")
            for item in values:
                if isinstance(item, bool) or not isinstance(item, int | float) \
                        or not math.isfinite(item):
                    problems.append(f"{name}: value {item!r} is not a finite number")
    return problems
