"""The Signalbox domain models, one module per area.

``ledger``: recipients, their choices, the inbox and the delivery ledger.
``campaigns``: audiences, message templates, campaigns, runs and signal triggers.
``inbox``: shared inbox content and broadcasts.
``journeys``: journeys, their published versions, enrollments and step runs.
"""

from .approvals import ApprovalDecision
from .campaigns import (
    Audience,
    AudienceMember,
    Campaign,
    CampaignRun,
    CampaignVariant,
    MessageParts,
    MessageTemplate,
    MessageTemplateVariant,
    SignalTrigger,
    TriggerState,
)
from .inbox import Broadcast, BroadcastRead, NotificationContent
from .journeys import Journey, JourneyEnrollment, JourneyStepRun, JourneyVersion
from .ledger import (
    STATUS_RANK,
    AuditEntry,
    Category,
    Channel,
    Delivery,
    DeliveryEvent,
    Notification,
    Preference,
    RateWindow,
    RecipientProfile,
    Suppression,
    TrackedLink,
    e164_validator,
    validate_timezone,
)
from .webhooks import WebhookAttempt, WebhookEndpoint, WebhookEvent, WebhookMessage

__all__ = [
    "STATUS_RANK", "ApprovalDecision", "Audience", "AudienceMember", "AuditEntry", "Broadcast", "BroadcastRead", "Campaign",
    "CampaignRun", "CampaignVariant", "Category", "Channel", "Delivery", "DeliveryEvent", "Journey", "JourneyEnrollment",
    "JourneyStepRun", "JourneyVersion", "MessageParts", "MessageTemplate",
    "MessageTemplateVariant", "Notification", "NotificationContent", "Preference", "RateWindow",
    "RecipientProfile", "SignalTrigger", "Suppression", "TrackedLink", "TriggerState", "e164_validator",
    "validate_timezone", "WebhookAttempt", "WebhookEndpoint", "WebhookEvent", "WebhookMessage",
]
