"""Marketer-authored message templates, rendered safely.

Templates are Jinja2 run in a hardened ``ImmutableSandboxedEnvironment`` (``sandbox``) with a
context of plain data (``context``): no model instance, setting or object ever reaches a
template. Each part renders under a time cap (``SIGNALBOX_TEMPLATE_RENDER_MS``, default 200) and
an output cap (``SIGNALBOX_TEMPLATE_MAX_OUTPUT``, default 100,000 characters); whatever a template
does, it ends as text or as a ``TemplateRenderError`` with a message for its author.

The API other code uses:

- ``template_problems(parts=..., allowed_names=...)``: save-time checks, with line numbers.
- ``compile_template(template)`` once per batch, then ``.render(channel=..., locale=...,
  context=...)`` per recipient, returning the ``Delivery.content`` shape of the channel.
- ``message_context(user=..., campaign=..., instance=..., unsubscribe_url=..., extra=...)``: the
  context for one recipient (``recipient_context(user)`` is its ``recipient`` part).
"""

from .compiled import CHANNEL_PARTS, CompiledTemplate, compile_parts, compile_template
from .context import (
    BASE_NAMES,
    RECIPIENT_FIELDS,
    campaign_context,
    instance_context,
    message_context,
    recipient_context,
)
from .problems import TemplateProblem, template_problems, template_trial_problems
from .sandbox import TemplateRenderError

__all__ = [
    "BASE_NAMES", "CHANNEL_PARTS", "RECIPIENT_FIELDS", "CompiledTemplate", "TemplateProblem", "TemplateRenderError",
    "campaign_context", "compile_parts", "compile_template", "instance_context", "message_context",
    "recipient_context", "template_problems", "template_trial_problems",
]
