"""Audiences: who a campaign goes to.

A rule audience is a JSON rule tree compiled to a ``Q`` over users (``rules``); a static audience
is a list of members (``services``). Reads (``selectors``) give the users, the live count and a
sample for the editor, and the ids in keyset chunks for the campaign launcher, which compiles
once at launch and freezes the result per run.

Integrating apps add conditions with :func:`register_audience_field` from ``AppConfig.ready()``
(see ``demo_shop/audiences.py``).
"""

from .engagement import register_engagement_fields
from .fields import register_builtin_fields
from .registry import (
    AudienceField,
    AudienceFieldRegistry,
    AudienceOp,
    audience_fields,
    register_audience_field,
)
from .rules import (
    MAX_DEPTH,
    MAX_NODES,
    AudienceRuleError,
    audience_builder_schema,
    audience_q,
    audience_rules_parse,
    audience_rules_validate,
)
from .selectors import AudiencePreview, audience_preview, audience_sizes, audience_user_ids, audience_users
from .services import (
    MAX_IMPORT_BYTES,
    AudienceImport,
    AudienceImportError,
    AudienceNotStaticError,
    audience_members_add,
    audience_members_import_csv,
    audience_members_remove,
)
from .values import MAX_DAYS, VALUE_TYPES

register_builtin_fields()
register_engagement_fields()

__all__ = [
    "MAX_DAYS", "MAX_DEPTH", "MAX_IMPORT_BYTES", "MAX_NODES", "VALUE_TYPES",
    "AudienceField", "AudienceFieldRegistry", "AudienceImport", "AudienceImportError",
    "AudienceNotStaticError", "AudienceOp", "AudiencePreview", "AudienceRuleError",
    "audience_builder_schema", "audience_fields", "audience_members_add", "audience_members_import_csv",
    "audience_members_remove", "audience_preview", "audience_q", "audience_rules_parse",
    "audience_rules_validate", "audience_sizes", "audience_user_ids", "audience_users",
    "register_audience_field",
]
