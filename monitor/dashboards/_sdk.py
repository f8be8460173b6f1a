"""The parts of grafana-foundation-sdk the dashboards use, imported in one place.

The SDK's classic dashboard model (``models.dashboard``) warns at import time that
``dashboardv2`` is preferred; v2 needs Grafana's kubernetesDashboards feature, while file
provisioning on a stock Grafana loads the classic JSON model, so the classic one is used and the
warning is silenced here (tests turn warnings into errors).
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.builders import (
        barchart,
        bargauge,
        stat,
        statetimeline,
        table,
        timeseries,
    )
    from grafana_foundation_sdk.builders import cloudwatch as cloudwatch_query
    from grafana_foundation_sdk.builders import common as common_builder
    from grafana_foundation_sdk.builders import dashboard as builder
    from grafana_foundation_sdk.builders import prometheus as prometheus_query
    from grafana_foundation_sdk.cog import builder as cogbuilder
    from grafana_foundation_sdk.cog import variants as cogvariants
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import cloudwatch as cloudwatch_model
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as model
    from grafana_foundation_sdk.models import prometheus as prometheus_model

__all__ = [
    "JSONEncoder",
    "barchart",
    "bargauge",
    "builder",
    "cloudwatch_model",
    "cloudwatch_query",
    "cogbuilder",
    "cogvariants",
    "common",
    "common_builder",
    "model",
    "prometheus_model",
    "prometheus_query",
    "stat",
    "statetimeline",
    "table",
    "timeseries",
]
