"""The one error a template render ends in: a message for the person who wrote the template."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _


class TemplateRenderError(Exception):
    """A template could not be rendered: the message says why, for the person who wrote it.

    ``line`` is the template line when known; ``part`` the part being rendered (``sms_text``).
    """

    def __init__(self, message: Any, *, line: int | None = None, part: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.part = part

    def __str__(self) -> str:
        if self.line:
            return str(_("Line %(line)d: %(message)s") % {"line": self.line, "message": self.message})
        return str(self.message)
