"""/api/v1/me/devices: an app registers the installation it runs on for mobile push.

The app calls these with its user's session or minted token (``RECIPIENT``), so a token can only
ever be registered for, listed to and removed by the user the app is signed in as. A token
registered again (the same phone, now signed in as someone else) moves to the new user
(``channels_adapters.devices``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Path, Router, Schema, Status
from pydantic import Field

from channels_adapters.devices import MAX_TOKEN_LENGTH, device_register, device_unregister
from channels_adapters.models import PushDevice

from . import schemas as s
from .auth import RECIPIENT
from .problems import Problem

router = Router()
MAX_DEVICES_LISTED = 50


class DeviceIn(s.In):
    token: str = Field(..., min_length=1, max_length=MAX_TOKEN_LENGTH)
    platform: Literal["fcm", "apns"] = "fcm"
    app_id: str = Field("", max_length=200)


class DeviceOut(Schema):
    token: str
    platform: str
    app_id: str
    registered_at: datetime
    last_used_at: datetime | None


class DeviceListOut(Schema):
    items: list[DeviceOut]


def _out(device: PushDevice) -> dict:
    return {"token": device.token, "platform": device.platform, "app_id": device.app_id,
            "registered_at": device.created_at, "last_used_at": device.last_used_at}


@router.post("/me/devices", response={201: DeviceOut, **s.ERRORS}, auth=RECIPIENT, tags=["me"])
def my_device_register(request: HttpRequest, payload: DeviceIn):
    """Register this app installation's FCM or APNs token for push to the signed-in user
    (again after the provider rotated it; the old token can be deleted)."""
    try:
        device = device_register(user=request.auth, token=payload.token, platform=payload.platform,
                                 app_id=payload.app_id)
    except ValidationError as exc:
        raise Problem(422, "validation", _("The request is not valid."),
                      errors=[{"field": "token" if exc.code == "invalid_token" else "platform",
                               "message": exc.messages[0]}]) from exc
    return Status(201, _out(device))


@router.get("/me/devices", response={200: DeviceListOut, **s.ERRORS}, auth=RECIPIENT, tags=["me"])
def my_devices(request: HttpRequest):
    """The signed-in user's registered installations, newest first (push goes to the newest)."""
    devices = PushDevice.objects.filter(user=request.auth).order_by("-created_at", "-id")[:MAX_DEVICES_LISTED]
    return {"items": [_out(device) for device in devices]}


@router.delete("/me/devices/{token}", response={204: None, **s.ERRORS}, auth=RECIPIENT, tags=["me"])
def my_device_unregister(request: HttpRequest, token: str = Path(..., max_length=MAX_TOKEN_LENGTH)):
    """Forget a token (the user signed out of the app). Another user's token is not found."""
    if not device_unregister(user=request.auth, token=token):
        raise Problem(404, "not-found", _("Not found."))
    return Status(204, None)
