"""``python -m monitor.metrics``: the metric table of docs/metrics.md."""

from monitor.metrics import metrics_table_markdown

print(metrics_table_markdown(), end="")
