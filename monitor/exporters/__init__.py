"""Exporters: where round results go, one module each (metric definitions: :mod:`monitor.metrics`).

``prometheus`` — a scrape endpoint over the latest snapshot (``routewatch serve``).
``cloudwatch`` — EMF on stdout (Lambda) and PutMetricData (long-running).
"""
