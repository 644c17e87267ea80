"""The ASGI application (uvicorn: ``make run``, ``make prod``).

Django gives every request its own ``ThreadSensitiveContext``: the request's synchronous parts
(middleware, ORM calls through ``sync_to_async``) run in a thread created for that request, which
lives until the response has been sent. For a live inbox stream that is up to a minute per open
page, and with the thread goes a database connection (thread-local). So the stream URL is handled
without a per-request context: its synchronous steps (the middleware once per connection, then a
state read per change or poll) run one after another in asgiref's single shared thread, on one
database connection, while the streaming itself is ``async`` (``notifications.inbox.live``).
Every other request keeps Django's behaviour.

Invariant: an open stream holds no thread and no database connection of its own; the threads of
a process do not grow with the number of open pages.
"""

import os

from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class SignalboxASGIHandler(ASGIHandler):
    """Django's handler, with the live inbox stream served outside a per-request thread."""

    _shared_thread_paths: frozenset[str] | None = None

    def shared_thread_paths(self) -> frozenset[str]:
        if self._shared_thread_paths is None:
            from django.urls import reverse

            self._shared_thread_paths = frozenset({reverse("notifications:stream")})
        return self._shared_thread_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] in self.shared_thread_paths():
            await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


get_asgi_application()  # django.setup(), as Django's own entry point does
application = SignalboxASGIHandler()
