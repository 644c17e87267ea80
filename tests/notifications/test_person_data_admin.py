"""Export and erase from the person's admin page, through real requests, for each role."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.contrib.auth import get_user_model

from notifications.models import AuditEntry, Delivery
from tests.factories import RecipientProfileFactory, UserFactory, staff_in

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def ada(db):
    user = RecipientProfileFactory(user=UserFactory(username="ada", email="ada@example.com")).user
    Delivery.objects.create(idempotency_key="k-1", recipient=user, channel="email", address=user.email, status="sent")
    return user


def export_url(pk) -> str:
    return f"/admin/auth/user/{pk}/export-personal-data/"


def erase_url(pk) -> str:
    return f"/admin/auth/user/{pk}/erase-personal-data/"


@pytest.mark.parametrize("group", ["Marketers", "Operators"])
def test_marketers_and_operators_are_refused_both(client, ada, group):
    client.force_login(staff_in(group, "someone"))
    assert client.get(export_url(ada.pk)).status_code == 403
    assert client.get(erase_url(ada.pk)).status_code == 403
    assert client.post(erase_url(ada.pk), {"confirmation": str(ada.pk)}).status_code == 403
    ada.refresh_from_db()
    assert ada.email == "ada@example.com"
    assert not AuditEntry.objects.filter(action__startswith="person.").exists()
    # The person's page does not offer what they may not do.
    page = client.get(f"/admin/auth/user/{ada.pk}/change/").content.decode()
    assert "erase-personal-data" not in page and "export-personal-data" not in page


@pytest.mark.parametrize("group", ["Managers", None])
def test_managers_and_superusers_export_a_zip_from_the_persons_page(client, ada, group):
    staff = staff_in(group, "boss")
    client.force_login(staff)
    page = client.get(f"/admin/auth/user/{ada.pk}/change/").content.decode()
    assert export_url(ada.pk) in page and erase_url(ada.pk) in page
    response = client.get(export_url(ada.pk))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f"signalbox-person-{ada.pk}.zip" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "ada@example.com" in archive.read("user.json").decode()
    assert AuditEntry.objects.filter(action="person.exported", actor=staff, target_id=str(ada.pk)).count() == 1


def test_erase_needs_a_post_with_the_id_typed(client, ada):
    manager = staff_in("Managers", "meg")
    client.force_login(manager)
    page = client.get(erase_url(ada.pk))
    assert page.status_code == 200 and b'name="confirmation"' in page.content
    ada.refresh_from_db()
    assert ada.email == "ada@example.com"  # showing the page changed nothing

    wrong = client.post(erase_url(ada.pk), {"confirmation": "ada"})
    assert wrong.status_code == 400 and f"Type {ada.pk} to confirm".encode() in wrong.content
    ada.refresh_from_db()
    assert ada.email == "ada@example.com"

    done = client.post(erase_url(ada.pk), {"confirmation": str(ada.pk)})
    assert done.status_code == 302 and done["Location"] == f"/admin/auth/user/{ada.pk}/change/"
    ada.refresh_from_db()
    assert (ada.username, ada.email, ada.is_active) == (f"erased-{ada.pk}", "", False)
    entry = AuditEntry.objects.get(action="person.erased")
    assert (entry.actor, entry.target_id, entry.changes["person_id"]) == (manager, str(ada.pk), ada.pk)
    assert "ada@example.com" not in str(entry.changes) and "ada" != entry.target_repr

    again = client.post(erase_url(ada.pk), {"confirmation": str(ada.pk)})
    assert again.status_code == 400 and b"already erased" in again.content
    assert AuditEntry.objects.filter(action="person.erased").count() == 1


def test_staff_accounts_are_not_erased_here(client):
    manager = staff_in("Managers", "meg")
    colleague = staff_in("Marketers", "mia")
    client.force_login(manager)
    response = client.post(erase_url(colleague.pk), {"confirmation": str(colleague.pk)})
    assert response.status_code == 400
    colleague.refresh_from_db()
    assert colleague.username == "mia" and colleague.is_active


@pytest.mark.parametrize("object_id", ["abc", "999999", "1%2F..%2F2", "-1", "99999999999999999999999"])
def test_tampered_or_unknown_ids_are_not_found(client, ada, object_id):
    client.force_login(staff_in("Managers", "meg"))
    assert client.get(f"/admin/auth/user/{object_id}/export-personal-data/").status_code == 404
    assert client.post(f"/admin/auth/user/{object_id}/erase-personal-data/", {"confirmation": "1"}).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_zip_streams_as_an_async_iterator(async_client, ada, monkeypatch):
    """Django reads a *sync* iterator whole into memory before sending it under ASGI."""
    import asyncio
    import concurrent.futures
    import warnings

    from asgiref.sync import sync_to_async
    from django.db import connections

    from notifications.privacy import export

    monkeypatch.setattr(export, "ROWS_PER_PIECE", 10)
    Delivery.objects.bulk_create(
        Delivery(idempotency_key=f"k-{i + 2}", recipient=ada, channel="email", address=ada.email, status="sent")
        for i in range(60)
    )
    async_client.force_login(staff_in("Managers", "meg"))

    async def download():
        response = await async_client.get(export_url(ada.pk))
        chunks = [chunk async for chunk in response.streaming_content]
        await sync_to_async(connections.close_all)()
        return response, chunks

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "StreamingHttpResponse must consume synchronous iterators"
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            response, chunks = pool.submit(asyncio.run, download()).result()

    assert response.status_code == 200 and response.is_async
    assert len([c for c in chunks if c]) > 10
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert len(json.loads(archive.read("deliveries.json"))) == 61
