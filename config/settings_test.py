"""Settings for the test suite: the real settings, plus what only tests want.

Processes the tests start (task workers, "another process" creating a notification) use this
module too, with ``DATABASE_URL``/``SQLITE_TEST_NAME`` pointing at the test database.
"""

import os

os.environ.setdefault("SECRET_KEY", "signalbox-tests-only-not-a-secret-0123456789abcdefghijklmnop")

from .settings import *  # noqa: E402,F403
from .settings import STORAGES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
# The test client and live server speak plain HTTP.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Close connections at the end of each request so finished live-server threads leave none open.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# Tests sign in with client.login(), which authenticates without a request, and
# django-axes refuses those. The lockout tests switch it on (tests/accounts/conftest.py).
AXES_ENABLED = False
