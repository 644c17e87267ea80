"""Issue 12: the time-zone picker offers canonical zones (no Factory, localtime or aliases),
labelled with their UTC offset and grouped; a stored alias still shows and saves as its zone."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest

from notifications.models import validate_timezone
from notifications.timezones import (
    TimeZoneField, TimeZoneWidget, canonical_zone, canonical_zones, flat_zone_choices, utc_offset_label,
    zone_names_for,
)


def test_the_list_holds_canonical_zones_only():
    zones = canonical_zones()
    assert {"Asia/Shanghai", "America/New_York", "Europe/Berlin", "UTC"} <= zones
    assert not zones & {"Factory", "localtime", "posixrules", "US/Pacific", "Asia/Calcutta", "Etc/GMT+3", "GMT"}
    assert len(zones) < len(zoneinfo.available_timezones()) - 100


def test_labels_carry_the_utc_offset():
    assert utc_offset_label("Asia/Shanghai", at=datetime(2026, 1, 1, tzinfo=UTC)) == "UTC+08:00"
    assert utc_offset_label("America/New_York", at=datetime(2026, 1, 1, tzinfo=UTC)) == "UTC\u221205:00"
    assert utc_offset_label("America/New_York", at=datetime(2026, 7, 1, tzinfo=UTC)) == "UTC\u221204:00"
    assert dict(flat_zone_choices())["Asia/Kolkata"] == "Asia/Kolkata (UTC+05:30)"


@pytest.mark.parametrize(("stored", "shown"), [
    ("US/Pacific", "America/Los_Angeles"), ("Asia/Calcutta", "Asia/Kolkata"), ("Etc/UTC", "UTC"),
    ("Asia/Shanghai", "Asia/Shanghai"), ("Etc/GMT+3", "Etc/GMT+3"), ("Factory", None), ("localtime", None),
    ("Mars/Base", None),
])
def test_stored_values_map_to_their_canonical_zone(stored, shown):
    assert canonical_zone(stored) == shown


def test_the_field_accepts_an_alias_as_its_zone_and_refuses_non_places():
    field = TimeZoneField()
    assert field.clean("US/Pacific") == "America/Los_Angeles"
    with pytest.raises(Exception, match="is not a time zone"):
        field.clean("Factory")
    with pytest.raises(Exception, match="not a known time zone"):
        validate_timezone("localtime")
    assert not field.has_changed("US/Pacific", "America/Los_Angeles")


def test_the_widget_renders_a_searchable_grouped_select_showing_a_stored_alias():
    page = TimeZoneWidget().render("timezone", "US/Pacific")
    assert "data-tz-search" in page and '<optgroup label="Asia">' in page
    assert '<option value="America/Los_Angeles" selected>' in page
    assert "Factory" not in page and "localtime" not in page and '"US/Pacific"' not in page
    # A real zone outside the list that a profile already holds is offered, so it still shows.
    assert '<option value="Etc/GMT+3" selected>' in TimeZoneWidget().render("timezone", "Etc/GMT+3")


def test_a_rule_on_a_zone_matches_its_aliases():
    assert "US/Pacific" in zone_names_for(["America/Los_Angeles"])
    assert "Etc/UTC" in zone_names_for(["UTC"])


@pytest.mark.django_db
def test_an_audience_rule_on_a_zone_finds_people_stored_under_its_alias():
    from notifications.audiences import audience_rules_validate  # noqa: PLC0415
    from notifications.audiences.rules import audience_q  # noqa: PLC0415
    from django.contrib.auth import get_user_model  # noqa: PLC0415
    from tests.factories import RecipientProfileFactory, UserFactory  # noqa: PLC0415

    pacific = RecipientProfileFactory(user=UserFactory(username="old"), timezone="US/Pacific").user
    RecipientProfileFactory(user=UserFactory(username="far"), timezone="Asia/Shanghai")
    rule = {"all": [{"field": "profile.timezone", "op": "in", "value": ["America/Los_Angeles"]}]}
    assert audience_rules_validate(rules=rule) == []
    assert list(get_user_model().objects.filter(audience_q(rules=rule)).values_list("pk", flat=True)) == [pacific.pk]
    # A rule saved before the list with an alias still validates.
    assert audience_rules_validate(rules={"all": [{"field": "profile.timezone", "op": "in", "value": ["US/Pacific"]}]}) == []
    assert audience_rules_validate(rules={"all": [{"field": "profile.timezone", "op": "in", "value": ["Factory"]}]})
