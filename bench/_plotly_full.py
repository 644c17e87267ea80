"""The server settings of ``python -m bench analytics_page_load``: production's, plus the baseline.

The baseline is the full plotly.js bundle inside the plotly wheel (a dev requirement), which the
analytics pages loaded before they moved to the basic bundle, collected as ``plotly/plotly.min.js``
(hashed, compressed, cached like every asset). No page names it: for a browser that carries the
``bench_baseline`` cookie, ``baseline_page`` rewrites the HTML to load it the old way, a deferred
script ahead of ``charts.js`` (which then finds plotly.js on the page and does not fetch its own).
A rewrite on the server, not in the browser: Playwright's request interception turns the HTTP
cache off, and the bench measures warm loads too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from django.core.files.storage import FileSystemStorage

from config.settings import *  # noqa: F403
from config.settings import MIDDLEWARE, STATICFILES_FINDERS
from config.storage import PlotlyFinder

STATICFILES_FINDERS = [*STATICFILES_FINDERS, "bench._plotly_full.FullPlotlyFinder"]
MIDDLEWARE = [*MIDDLEWARE, "bench._plotly_full.baseline_page"]
BASELINE_COOKIE = "bench_baseline"
CHARTS_SCRIPT = '<script src="/static/signalbox/charts.'


def baseline_page(get_response):
    from django.templatetags.static import static

    def middleware(request):
        response = get_response(request)
        if request.COOKIES.get(BASELINE_COOKIE) and CHARTS_SCRIPT.encode() in getattr(response, "content", b""):
            old = f'<script src="{static("plotly/plotly.min.js")}" defer></script>\n  {CHARTS_SCRIPT}'
            response.content = response.content.replace(CHARTS_SCRIPT.encode(), old.encode(), 1)
        return response

    return middleware


class FullPlotlyFinder(PlotlyFinder):
    """``plotly/plotly.min.js``: the full bundle from the plotly wheel's ``package_data``."""

    package = "plotly"
    files = ("plotly.min.js",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.location = Path(importlib.util.find_spec("plotly").submodule_search_locations[0]) / "package_data"
        self.storage = FileSystemStorage(location=self.location)
        self.storage.prefix = self.prefix

    def check(self, **kwargs):
        return []
