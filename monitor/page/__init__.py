"""The routing page: one round document (``check --json`` shape) as a self-contained HTML page.

``serve`` answers it at ``/`` from the current snapshot (:mod:`monitor.page.live`, rendered once
per snapshot); ``check --html FILE`` writes it for one round. One renderer for both.
"""

from __future__ import annotations

from monitor.page.render import LiveOptions, render_page
from monitor.page.view import PageDocumentError, page_view

__all__ = ["LiveOptions", "PageDocumentError", "page_view", "render_page"]
