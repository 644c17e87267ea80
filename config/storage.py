"""Static files storage: WhiteNoise's compressed, hashed files, the same under ``make run`` and production.

``collectstatic`` (run by ``make run`` and ``make prod`` before any server starts: ``config/serve.py``)
writes every asset under a content-hashed name with ``.gz`` and ``.br`` siblings, plus the
``staticfiles.json`` manifest. WhiteNoise serves hashed names with a ten-year ``immutable``
``Cache-Control`` and the compressed sibling the browser accepts, so ``plotly-basic.min.js`` (1.2 MB)
leaves as about 0.3 MB of brotli once and is never fetched again until it changes.

Invariants:
- ``url()`` never raises for a file the manifest does not know (collectstatic not run, an asset added
  since): it returns the plain name, which WhiteNoise still serves (from the app
  directories in DEBUG, from ``STATIC_ROOT`` if it was collected under that name). A page never
  answers 500 because of a static file; at worst that one asset is uncompressed and short-cached.
- Once a manifest exists, URLs are hashed in DEBUG too (Django would hand out plain names there), so
  ``make run`` serves exactly what production serves. An edit under ``static/`` shows after the next
  ``collectstatic`` (``make run`` runs it at every start).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core import checks
from django.core.files.storage import FileSystemStorage
from whitenoise.compress import Compressor
from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class _AtomicCompressor(Compressor):
    """WhiteNoise's compressor, writing each compressed file under a temporary name first: a
    collectstatic cut short never leaves a truncated ``.br`` that a later run would take as done."""

    def write_data(self, path, data, suffix, stat_result):
        filename = path + suffix
        partial = f"{filename}.{os.getpid()}.partial"
        with open(partial, "wb") as f:
            f.write(data)
        os.utime(partial, (stat_result.st_atime, stat_result.st_mtime))
        os.replace(partial, filename)
        return filename


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Compressed, hashed static files whose URLs degrade to the plain name instead of failing."""

    manifest_strict = True  # a miss raises in ``stored_name``, answered below with the plain name

    def url(self, name: str | None, force: bool = False) -> str:
        # Hash whenever collectstatic wrote a manifest, DEBUG or not (see the module docstring).
        return super().url(name, force=force or bool(self.hashed_files))

    def compress_files(self, paths):
        """Compress only what changed since the last collectstatic: every start runs it, and plotly's
        brotli alone takes seconds on a busy machine.

        A hashed name is its content, so its ``.br``/``.gz`` siblings, once there, are current (they are
        written whole or not at all: ``_AtomicCompressor``). A plain name's siblings are current when
        they carry its mtime, which WhiteNoise copies onto them.
        """
        hashed = set(self.hashed_files.values())
        return super().compress_files([path for path in paths if not self._compressed_current(path, hashed)])

    def _compressed_current(self, path: str, hashed: set[str]) -> bool:
        source = self.path(path)
        siblings = [source + suffix for suffix in (".br", ".gz") if os.path.exists(source + suffix)]
        if not siblings or path in hashed:
            return bool(siblings)
        mtime = os.stat(source).st_mtime
        return all(abs(os.stat(sibling).st_mtime - mtime) < 0.001 for sibling in siblings)

    def create_compressor(self, **kwargs) -> Compressor:
        return _AtomicCompressor(**kwargs)

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:
            # Debug, not warning: WhiteNoise asks for names that exist in no manifest while it decides
            # which files are immutable, for every file at every start.
            logger.debug("Static file %r is not in the staticfiles manifest: its plain name is used.", name)
            return name


class PlotlyFinder(BaseFinder):
    """plotly.js's official *basic* partial bundle (scatter, bar, pie) as ``plotly/plotly-basic.min.js``,
    with its ``plotly/LICENSE``, from ``node_modules/`` (no CDN, no network at run time).

    The version is pinned in ``package.json`` and ``package-lock.json`` (with its integrity hash);
    ``make run``, ``make prod`` and ``make test`` install it with ``npm ci --ignore-scripts``. Every
    chart is drawn with bar traces (``dashboard/analytics/charts.py``), so the full bundle (4.8 MB,
    ~2.3 s of script execution in Chromium here) is not needed: the basic one is 1.2 MB and runs in
    ~0.35 s. Without ``node_modules`` the pages still answer; their charts stay empty and
    ``check()`` says what to run.
    """

    prefix = "plotly"
    package = "plotly.js-basic-dist-min"
    files = ("plotly-basic.min.js", "LICENSE")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self.location = Path(settings.BASE_DIR) / "node_modules" / self.package
        self.storage = FileSystemStorage(location=self.location)
        self.storage.prefix = self.prefix  # collectstatic copies them to STATIC_ROOT/plotly/

    def check(self, **kwargs) -> list[checks.CheckMessage]:
        if (self.location / self.files[0]).exists():
            return []
        return [checks.Warning(
            f"{self.package} is not installed in {self.location.parent}: the analytics charts will not draw.",
            hint="Run `npm ci --ignore-scripts` in the project directory (make run, make prod and make test do).",
            id="signalbox.W010",
        )]

    def find(self, path: str, find_all: bool = False, **kwargs) -> str | list[str]:
        prefix, _, name = path.partition("/")
        match = self.location / name
        if prefix != self.prefix or name not in self.files or not match.exists():
            return []
        return [str(match)] if find_all or kwargs.get("all") else str(match)

    def list(self, ignore_patterns):
        for name in self.files:
            if (self.location / name).exists():
                yield name, self.storage
