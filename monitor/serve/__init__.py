"""``routewatch serve``: rounds on a schedule, the latest snapshot on ``/metrics``."""
