"""Request and response shapes of /api/v1/. Unknown fields in a request body are refused (422):
a typo must not be silently ignored."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator, model_validator

ChannelName = Literal["email", "sms", "inapp", "webpush", "chat", "wechat", "mobilepush"]
LocaleName = Literal["en", "zh-hans"]
MAX_RECIPIENTS = 1000
MAX_BULK = 500
MAX_ID = 2**62  # ids past this would overflow a 64-bit column: 422, not a database error


class FieldError(Schema):
    field: str
    message: str


class ProblemOut(Schema):
    """An RFC 9457 problem document (served as ``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


# What any operation may answer besides its success: malformed body (400), no or a revoked key or
# token (401), a missing scope or CSRF token (403), an unknown id (404), a body over the cap (413),
# invalid data (422), over the key's rate limit (429).
ERRORS = {code: ProblemOut for code in (400, 401, 403, 404, 413, 422, 429)}


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class RecipientRefIn(In):
    id: int | None = Field(None, ge=1, le=MAX_ID)
    external_id: str | None = Field(None, min_length=1, max_length=255)
    email: str | None = Field(None, min_length=3, max_length=254)

    @model_validator(mode="after")
    def _exactly_one(self):
        if sum(v is not None for v in (self.id, self.external_id, self.email)) != 1:
            raise ValueError("Give exactly one of id, external_id, email.")
        return self


class NotificationIn(In):
    recipients: list[RecipientRefIn] = Field(..., min_length=1, max_length=MAX_RECIPIENTS)
    template: str | None = Field(None, min_length=1, max_length=80, description="A message template's key.")
    title: str = Field("", max_length=200)
    body: str = Field("", max_length=20_000)
    url: str = Field("", max_length=500)
    context: dict = Field(default_factory=dict, description="Template variables (plain JSON).")
    channels: list[ChannelName] = Field(default_factory=lambda: ["inapp"], min_length=1, max_length=7)
    category: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _template_or_title(self):
        if self.template is None and not self.title.strip():
            raise ValueError("Give a template or a title.")
        return self


class NotificationOut(Schema):
    planned: int
    suppressed: int
    already_known: int
    delivery_ids: list[int]


class BroadcastIn(In):
    title: str = Field(..., min_length=1, max_length=200)
    body: str = Field("", max_length=20_000)
    url: str = Field("", max_length=500)
    category: str | None = Field(None, min_length=1, max_length=64)


class JourneyEnterIn(In):
    recipients: list[RecipientRefIn] = Field(..., min_length=1, max_length=MAX_RECIPIENTS)
    context: dict = Field(default_factory=dict, description="Plain JSON the steps branch on and templates show.")
    entry_key: str | None = Field(None, min_length=1, max_length=100,
                                  description="Names the occasion (an order id): the same key enters once.")


class JourneyEnterOut(Schema):
    entered: int
    skipped: int


class BroadcastOut(Schema):
    id: int
    title: str
    created_at: datetime


class RecipientIn(In):
    external_id: str | None = Field(None, min_length=1, max_length=255)
    email: str | None = Field(None, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    first_name: str | None = Field(None, max_length=150)
    last_name: str | None = Field(None, max_length=150)
    phone: str | None = Field(None, max_length=16, description="E.164, e.g. +8613812345678")
    timezone: str | None = Field(None, max_length=64)
    locale: LocaleName | None = None
    chat_ids: dict[str, str] | None = Field(None, max_length=20)

    @model_validator(mode="after")
    def _named(self):
        if not self.external_id and not self.email:
            raise ValueError("Give an external_id or an email.")
        return self


class RecipientBulkIn(In):
    recipients: list[RecipientIn] = Field(..., min_length=1, max_length=MAX_BULK)


class RecipientOut(Schema):
    id: int
    created: bool


class RecipientBulkOut(Schema):
    results: list[RecipientOut]


class RecipientTokenIn(In):
    ttl_seconds: int = Field(900, ge=1, le=3600)


class RecipientTokenOut(Schema):
    token: str
    expires_at: int


class QuietHours(In):
    """Wall-clock times in the recipient's time zone, e.g. ``22:00:00``; no offset."""

    start: time
    end: time

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("A local time without a zone offset, e.g. 22:00:00.")
        return value


class CategoryPreference(Schema):
    key: str
    name: str
    user_can_opt_out: bool
    channels: dict[str, bool]
    digest: str


class PreferencesOut(Schema):
    categories: list[CategoryPreference]
    quiet_hours: QuietHours | None
    timezone: str


class PreferencesIn(In):
    """Only what is given changes: ``channels`` maps a category key to ``{channel: on}``."""

    channels: dict[str, dict[ChannelName, bool]] = Field(default_factory=dict, max_length=200)
    digest: dict[str, Literal["immediate", "hourly", "daily"]] = Field(default_factory=dict, max_length=200)
    quiet_hours: QuietHours | None = None
    clear_quiet_hours: bool = False
    timezone: str | None = Field(None, max_length=64)


class SuppressionIn(In):
    channel: ChannelName
    address: str = Field(..., min_length=1, max_length=320)
    reason: Literal["manual", "unsubscribe", "hard_bounce", "complaint", "stop"] = "manual"
    note: str = Field("", max_length=255)


class SuppressionOut(Schema):
    id: int
    channel: str
    address: str
    reason: str
    note: str
    user_id: int | None
    created_at: datetime


class SuppressionPage(Schema):
    items: list[SuppressionOut]
    next_cursor: int | None


class DeliveryEventOut(Schema):
    kind: str
    source: str
    occurred_at: datetime


class DeliveryOut(Schema):
    id: int
    recipient_id: int | None
    channel: str
    status: str
    status_reason: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    events: list[DeliveryEventOut]


class CampaignOut(Schema):
    id: int
    name: str
    status: str
    schedule: str
    channels: list[str]
    next_run_at: datetime | None
    created_at: datetime


class CampaignPage(Schema):
    items: list[CampaignOut]
    next_cursor: int | None


class RunOut(Schema):
    id: int
    status: str
    occurrence: datetime
    finished_at: datetime | None
    audience_size: int
    total: int
    sent: int
    failed: int
    unknown: int
    suppressed: int
    waiting: int
    percent: int


class CampaignStatusOut(CampaignOut):
    runs: list[RunOut]


class InboxItemOut(Schema):
    id: str = Field(..., description="notification-<id> or broadcast-<id>")
    kind: Literal["notification", "broadcast"]
    title: str
    body: str
    url: str
    category: str | None
    created_at: datetime
    read_at: datetime | None


class InboxPageOut(Schema):
    items: list[InboxItemOut]
    unread: int
    next_cursor: str | None


class UnreadOut(Schema):
    unread: int


class ChangedOut(Schema):
    changed: int
