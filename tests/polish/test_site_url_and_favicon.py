"""`make run PORT=8101` links to port 8101; /favicon.ico is our icon, not a 404."""

from __future__ import annotations

import os

import pytest

from config import serve


@pytest.fixture
def launcher(monkeypatch, capsys):
    """``config.serve`` up to the point where it would start processes; returns what it printed
    and the environment its children would inherit."""
    steps = []
    monkeypatch.setattr(serve, "step", lambda what, argv, quiet=True: steps.append(argv))
    monkeypatch.setattr(serve, "supervise", lambda children: 0)
    monkeypatch.setattr(serve.os, "chdir", lambda path: None)
    # Set, then removed: monkeypatch records an undo only for a variable that exists, and
    # main() sets SITE_URL, which must not outlive this test (later servers inherit it).
    monkeypatch.setenv("SITE_URL", "")
    monkeypatch.delenv("SITE_URL")
    monkeypatch.setattr("environ.Env.read_env", lambda *args, **kwargs: None)  # no local .env in the way

    def run(*argv: str) -> tuple[str, str]:
        assert serve.main(["run", *argv]) == 0
        return capsys.readouterr().out, os.environ.get("SITE_URL", "")

    yield run
    # main() installs its own signal handlers; put Python's back for the rest of the session.
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_make_run_on_another_port_links_to_that_port(launcher):
    printed, site_url = launcher("--host", "127.0.0.1", "--port", "8101")
    assert site_url == "http://127.0.0.1:8101"  # what seed_demo's logins and every captured email use
    assert "serving http://127.0.0.1:8101/" in printed and ":8000" not in printed


def test_an_explicit_site_url_wins(launcher, monkeypatch):
    monkeypatch.setenv("SITE_URL", "https://signalbox.example.com")
    _printed, site_url = launcher("--port", "8101")
    assert site_url == "https://signalbox.example.com"


def test_a_wildcard_bind_links_to_loopback():
    assert serve.site_url_for(host="0.0.0.0", port=8101) == "http://127.0.0.1:8101"
    assert serve.site_url_for(host="::1", port=9000) == "http://[::1]:9000"


@pytest.mark.django_db
def test_seed_demo_prints_links_to_the_site_url(settings):
    from io import StringIO

    from django.core.management import call_command

    settings.SITE_URL = "http://127.0.0.1:8101"
    out = StringIO()
    call_command("seed_demo", "--users", "5", "--days", "1", "--force", stdout=out)
    assert "http://127.0.0.1:8101/admin/" in out.getvalue() and ":8000" not in out.getvalue()


@pytest.mark.django_db
def test_favicon_ico_is_our_icon(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.redirect_chain[0][1] == 301
    assert response.redirect_chain[0][0].endswith("signalbox/favicon.svg")
    assert response.status_code == 200
