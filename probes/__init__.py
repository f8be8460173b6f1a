"""Measurement only: each probe returns frozen evidence and never a verdict.

``probes`` never imports ``monitor``. One module per probe type, one function each:
:func:`probes.dns.probe_dns`, :func:`probes.http.probe_http`, :func:`probes.cdn.probe_cdn`; their
typed errors in :mod:`probes.errors`. The paths that use them are listed in
:data:`monitor.core.paths.PATHS`. Importing the package imports no network stack (the config
layer reads :mod:`probes.patterns`).
"""
