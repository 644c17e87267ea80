"""Provider-side templates (Aliyun and Tencent Cloud SMS, WeChat template messages): which approved template and signature a
message goes out with, and the values of its variables.

Chinese SMS providers do not send free text: every message is an approved template (Aliyun
``SMS_154950909``, Tencent ``1110``) signed with an approved signature name (``阿里云短信测试``),
filled with variables. Signalbox keeps that mapping in the channel's ``OPTIONS`` (the message
template model has no provider fields; adding them would need a migration of its own)::

    "OPTIONS": {
        "sign_name": "Signalbox",
        "templates": {
            # Signalbox message template key -> the provider's template and its variables
            "order-shipped": {"template_code": "SMS_154950909", "params": ["order.number", "carrier"]},
            "login-code": {"template_code": "SMS_1", "params": {"code": "code"}, "sign_name": "Signalbox 安全"},
        },
        # Messages from any other template, and ad-hoc notify() texts: the rendered SMS text goes
        # into this template's one variable (e.g. an approved "${content}" notice template).
        "default_template": {"template_code": "SMS_2", "text_param": "content"},
    }

``params`` names values in the context the message was rendered with (``notify(context=...)``,
a campaign's template values, ``recipient.first_name``, dotted paths into them): a list for
providers whose variables are positional (Tencent) or named after the last path segment
(Aliyun), a dict ``{provider variable: context path}`` to name them. A message whose template is
not mapped, with no ``default_template``, fails permanently before the provider is contacted
(reason ``"no_provider_template"``): a configuration to fix, then resend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ChannelConfigurationError, PermanentChannelError
from .base import OutboundMessage


@dataclass(frozen=True)
class ProviderTemplate:
    template_code: str
    #: (provider variable name, context path); the name is the path's last segment for a list.
    params: tuple[tuple[str, str], ...] = ()
    #: The variable the rendered text goes into (default template only).
    text_param: str = ""
    sign_name: str = ""
    #: The provider's own keys the alias allows beside these (``TemplateMap(extra_keys=...)``),
    #: e.g. WeChat's ``kind``, ``page`` and ``miniprogram``, as configured.
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FilledTemplate:
    """What the provider is asked to send: the template, its signature and its variables, in order."""

    template_code: str
    sign_name: str
    values: tuple[tuple[str, str], ...]
    extra: dict = field(default_factory=dict)


def _template(owner: str, key: str, spec: Any, extra_keys: frozenset[str] = frozenset()) -> ProviderTemplate:
    if not isinstance(spec, dict) or not spec.get("template_code"):
        raise ChannelConfigurationError(f"{owner}: templates[{key!r}] needs a template_code.")
    unknown = set(spec) - {"template_code", "params", "text_param", "sign_name"} - extra_keys
    if unknown:
        raise ChannelConfigurationError(f"{owner}: templates[{key!r}] has unknown keys {', '.join(sorted(unknown))}.")
    raw = spec.get("params") or ()
    if isinstance(raw, dict):
        params = tuple((str(name), str(path)) for name, path in raw.items())
    elif isinstance(raw, (list, tuple)):
        params = tuple((str(path).rsplit(".", 1)[-1], str(path)) for path in raw)
    else:
        raise ChannelConfigurationError(f"{owner}: templates[{key!r}]['params'] must be a list or a dict.")
    return ProviderTemplate(
        template_code=str(spec["template_code"]), params=params, text_param=str(spec.get("text_param") or ""),
        sign_name=str(spec.get("sign_name") or ""), extra={k: spec[k] for k in extra_keys if k in spec},
    )


class TemplateMap:
    """The ``templates`` / ``default_template`` / ``sign_name`` OPTIONS of one alias, checked when built."""

    def __init__(self, owner: str, *, sign_name: str, templates: dict | None, default_template: dict | None,
                 signed: bool = True, names: str = "provider SMS template",
                 extra_keys: frozenset[str] = frozenset()) -> None:
        # ``names``: what the provider calls a template, in the error when none is mapped.
        # ``extra_keys``: provider-specific keys a template may carry (checked by the adapter).
        self.names = names
        if templates is not None and not isinstance(templates, dict):
            raise ChannelConfigurationError(f"{owner}: templates must be a dict of message template keys.")
        self.sign_name = sign_name
        self.templates = {str(key): _template(owner, key, spec, extra_keys) for key, spec in (templates or {}).items()}
        self.default = (_template(owner, "default_template", default_template, extra_keys)
                        if default_template else None)
        if self.default is not None and not self.default.text_param:
            raise ChannelConfigurationError(f"{owner}: default_template needs a text_param.")
        for key, template in [*self.templates.items(), ("default_template", self.default)]:
            if signed and template is not None and not (template.sign_name or sign_name):
                raise ChannelConfigurationError(f"{owner}: no sign_name for templates[{key!r}].")

    def fill(self, message: OutboundMessage) -> FilledTemplate:
        """The provider template for ``message``, its variables read from the render context."""
        source = message.metadata.get("template") or {}
        template = self.templates.get(str(source.get("key") or ""))
        if template is None:
            if self.default is None:
                raise PermanentChannelError(
                    f"No {self.names} is mapped for message template {source.get('key') or '(none)'!r} "
                    "and no default_template is set.",
                    reason="no_provider_template",
                )
            return FilledTemplate(self.default.template_code, self.default.sign_name or self.sign_name,
                                  ((self.default.text_param, message.text),), self.default.extra)
        context = source.get("context") or {}
        values = []
        for name, path in template.params:
            value = _lookup(context, path)
            if value is None:
                raise PermanentChannelError(
                    f"The message has no value for {path!r}, which provider template {template.template_code} needs.",
                    reason="template_param_missing",
                )
            values.append((name, str(value)))
        return FilledTemplate(template.template_code, template.sign_name or self.sign_name, tuple(values),
                              template.extra)


def _lookup(context: Any, path: str) -> Any:
    value = context
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
