"""Receipts reached from a message: the open pixel and click redirects.

These arrive without a session (a mail client fetching an image, a recipient clicking in a
webmail tab where they are not logged in), so the signed token in the URL is the authorisation.
A tampered, expired or wrong-purpose token changes nothing and gets a 404.
"""

from __future__ import annotations

import base64

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_safe

from .. import tokens
from ..models import Delivery, TrackedLink
from . import tracking

# The smallest transparent GIF (1x1, 43 bytes).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


# --- Open pixel and click redirect ----------------------------------------------------------

@require_safe
def track_open(request: HttpRequest, token: str) -> HttpResponse:
    try:
        delivery = Delivery.objects.get(pk=tokens.read_open_token(token))
    except (tokens.BadToken, Delivery.DoesNotExist):
        raise Http404 from None
    # One receipt per delivery (and one flagged for a machine open); repeats count in its hits.
    tracking.open_record(delivery=delivery, user_agent=request.headers.get("User-Agent", ""), ip=_client_ip(request))
    response = HttpResponse(PIXEL_GIF, content_type="image/gif")
    response["Cache-Control"] = "no-store, private"
    return response


@require_safe
def track_click(request: HttpRequest, token: str) -> HttpResponse:
    """Redirect to the URL stored at send time; nothing in the request can change the target."""
    try:
        link = TrackedLink.objects.select_related("delivery").get(pk=tokens.read_click_token(token))
    except (tokens.BadToken, TrackedLink.DoesNotExist):
        raise Http404 from None
    tracking.click_record(link=link)
    response = HttpResponseRedirect(link.url)
    response["Cache-Control"] = "no-store, private"
    return response
