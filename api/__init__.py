"""The REST API (``/api/v1/``): server keys, the endpoints over the same services as the admin
and ``notify()``, recipient-facing endpoints for apps, RFC 9457 problem details."""
