"""Outbound webhooks (Standard Webhooks): each event's post to each endpoint is a delivery on the
ledger (``WebhookMessage``), signed and POSTed with retries, honest outcomes and endpoints disabled
after repeated failures.

* ``events``: what may be posted and the cheap record path (``webhook_events_record``, which plans
  the posts); a cached table of which enabled endpoints want which event, so recording costs no
  query when none does.
* ``signing``: secrets (``whsec_`` + base64) and the ``webhook-signature`` header.
* ``sending``: the drain: claim due messages in order per delivery, POST them through the SSRF
  guard on a keep-alive session, record each attempt, schedule retries, disable a failing endpoint.
* ``services``: endpoints made, edited, rotated, re-enabled; resend; test events; staff notices.
* ``receivers``: the outbound signals and receipts this room listens to.

The ledger never imports this room: it announces (``signals``) and the receivers record.
"""
