"""Data labels in the reader's language: a model keeps its default text in ``name`` and a
translation per shipped language in ``name_<language>`` (``name_zh_hans``), empty when nobody
wrote one. One place decides which column a language reads and how an empty one falls back.
"""

from __future__ import annotations

from django.db.models import F, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils.translation import get_language

# Languages with their own column, by the prefix of the language code (zh, zh-hans, zh-cn).
LOCALIZED_SUFFIXES: dict[str, str] = {"zh": "zh_hans"}


def localized_field(base: str, language: str | None = None) -> str | None:
    """The column holding ``base`` in ``language`` (the active one by default), or None when the
    language reads the default column."""
    code = (language or get_language() or "").lower()
    suffix = LOCALIZED_SUFFIXES.get(code.split("-")[0])
    return f"{base}_{suffix}" if suffix else None


def localized_value(obj, base: str, language: str | None = None) -> str:
    """``obj``'s ``base`` text in ``language``, the default text when that one is empty."""
    field = localized_field(base, language)
    return (getattr(obj, field) if field else "") or getattr(obj, base)


def localized_expression(path: str, language: str | None = None):
    """``path`` (``"category__name"``) in ``language`` as a query expression, for ``values()`` and
    annotations: the translation, or the default text where it is empty."""
    base, _, attribute = path.rpartition("__")
    field = localized_field(attribute, language)
    if field is None:
        return F(path)
    translated = f"{base}__{field}" if base else field
    return Coalesce(NullIf(F(translated), Value("")), F(path))
