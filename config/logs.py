"""Structured logs: ``LOG_FORMAT=json`` and the ids of the work being done (``settings.LOGGING``).

``log_context(run_id=..., campaign_id=...)`` puts ids in a context variable for the length of a
block; ``ContextFilter`` (on the console handler) copies them onto every record logged inside it,
by any logger, so a line written deep in an adapter still says which delivery, run, campaign and
task it belongs to. ``JsonFormatter`` writes one JSON object per line with those ids; the plain
format ignores them. Context variables follow threads' and asyncio tasks' own contexts, so two
batches sent side by side never mix their ids.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

# The ids a record may carry, in the order a JSON line lists them.
CONTEXT_FIELDS = ("delivery_id", "run_id", "campaign_id", "task_id")

_context: ContextVar[dict[str, object]] = ContextVar("signalbox_log_context", default={})  # noqa: B039 (never mutated)


@contextmanager
def log_context(**ids: object) -> Iterator[dict[str, object]]:
    """Within the block, every log record carries ``ids`` (on top of the enclosing block's; None is
    left out). Yields the block's own dict: ids learnt later in the block are added to it."""
    merged = {**_context.get(), **{key: value for key, value in ids.items() if value is not None}}
    token = _context.set(merged)
    try:
        yield merged
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current ``log_context`` ids onto each record; an ``extra=`` of the call wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context ids
    present, and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
