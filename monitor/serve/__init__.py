"""``routewatch serve``: rounds on a schedule, the latest snapshot on ``/metrics``.

One module per job: :mod:`~monitor.serve.plan` (when each vantage point's rounds run, a pure
function of the settings and a given ``now``), :mod:`~monitor.serve.rounds` (one round, bounded
and never raising), :mod:`~monitor.serve.round_log` (its log line), :mod:`~monitor.serve.exports`
(fan-out to the exporters beside Prometheus), :mod:`~monitor.serve.reload` (SIGHUP),
:mod:`~monitor.serve.signals`, and :mod:`~monitor.serve.scheduler`, which runs them on APScheduler.
"""
