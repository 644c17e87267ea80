"""The API docs page in Chromium: Swagger UI from local static files runs under the strict CSP
(no console error, no request leaving the site) and lists the operations."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_the_docs_render_offline_without_console_errors(page: Page, live_server):
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: request.url.startswith(live_server.url) or outside.append(request.url))
    page.goto(live_server.url + "/api/docs/")
    page.wait_for_selector(".opblock", timeout=15_000)
    from api.urls import api

    operations = sum(len(ops) for ops in api.get_openapi_schema()["paths"].values())
    assert page.locator(".opblock").count() == operations
    page.wait_for_timeout(300)
    assert errors == [] and outside == []
