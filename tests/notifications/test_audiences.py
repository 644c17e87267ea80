"""Audiences: rule trees compiled to a Q over real users, profiles, groups and shop orders;
strict validation (fuzzed); exact counts; keyset chunks; the live preview's query count;
static members and CSV import."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications.audiences import (
    MAX_DEPTH,
    MAX_NODES,
    AudienceImportError,
    AudienceNotStaticError,
    AudienceRuleError,
    audience_builder_schema,
    audience_fields,
    audience_members_add,
    audience_members_import_csv,
    audience_members_remove,
    audience_preview,
    audience_q,
    audience_rules_parse,
    audience_rules_validate,
    audience_sizes,
    audience_user_ids,
    audience_users,
    register_audience_field,
)
from notifications.models import Audience, AudienceMember, AuditEntry
from notifications.timezones import canonical_zones, zone_aliases
from tests.factories import (
    AudienceFactory,
    CustomerFactory,
    OrderFactory,
    RecipientProfileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
User = get_user_model()


def names(queryset) -> list[str]:
    return sorted(queryset.values_list("username", flat=True))


def matching(rules) -> list[str]:
    return names(User.objects.filter(is_active=True).filter(audience_q(rules=rules)))


@pytest.fixture
def people():
    """Three active users who differ in every field, one inactive user who matches everything."""
    now = timezone.now()
    ada = UserFactory(
        username="ada", first_name="Ada", last_name="Lovelace", email="ada@example.com",
        date_joined=now - timedelta(days=400), last_login=now - timedelta(days=2),
    )
    RecipientProfileFactory(user=ada, locale="en", timezone="Europe/London", phone="+14155550100")
    grace = UserFactory(
        username="grace", first_name="Grace", last_name="Hopper", email="grace@corp.cn",
        date_joined=now - timedelta(days=10), last_login=None, is_staff=True,
    )
    RecipientProfileFactory(user=grace, locale="zh-hans", timezone="Asia/Shanghai", phone="")
    # No recipient profile: counts as the profile defaults (en, UTC, no phone).
    linus = UserFactory(
        username="linus", first_name="Linus", last_name="Torvalds", email="",
        date_joined=now - timedelta(days=100), last_login=now - timedelta(days=60),
    )
    ghost = UserFactory(
        username="ghost", email="ghost@example.com", is_active=False,
        date_joined=now - timedelta(days=1), last_login=now,
    )
    RecipientProfileFactory(user=ghost, locale="en", phone="+14155550199")

    beta = Group.objects.create(name="Beta testers")
    ada.groups.add(beta)
    ghost.groups.add(beta)

    # Ada: a VIP with three paid orders this month (a to-many join would triple her).
    ada_customer = CustomerFactory(user=ada, vip=True)
    for days in (1, 5, 20):
        OrderFactory(customer=ada_customer, status="paid", paid_at=now - timedelta(days=days))
    # Grace: one shipped order 10 days ago, two paid 200 days ago, and orders that do not count.
    grace_customer = CustomerFactory(user=grace, vip=False)
    OrderFactory(customer=grace_customer, status="shipped", paid_at=now - timedelta(days=10))
    for _ in range(2):
        OrderFactory(customer=grace_customer, status="paid", paid_at=now - timedelta(days=200))
    OrderFactory(customer=grace_customer, status="cancelled", paid_at=now - timedelta(days=3))
    OrderFactory(customer=grace_customer, status="pending", paid_at=None)
    ghost_customer = CustomerFactory(user=ghost, vip=True)
    OrderFactory(customer=ghost_customer, status="paid", paid_at=now)
    return {"ada": ada, "grace": grace, "linus": linus, "ghost": ghost, "beta": beta}


def cond(field: str, op: str, value=None, *, no_value: bool = False) -> dict:
    node = {"field": field, "op": op}
    if not no_value:
        node["value"] = value
    return node


EVERYONE = ["ada", "grace", "linus"]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({}, EVERYONE),
        (None, EVERYONE),
        ({"all": []}, EVERYONE),
        (cond("user.email", "contains", "EXAMPLE"), ["ada"]),
        (cond("user.email", "endswith", "corp.cn"), ["grace"]),
        (cond("user.email", "eq", "Ada@Example.com"), ["ada"]),
        (cond("user.email", "startswith", "gr"), ["grace"]),
        (cond("user.username", "eq", "linus"), ["linus"]),
        (cond("user.username", "contains", "a"), ["ada", "grace"]),
        (cond("user.first_name", "startswith", "li"), ["linus"]),
        (cond("user.last_name", "contains", "hop"), ["grace"]),
        (cond("user.has_email", "is", True), ["ada", "grace"]),
        (cond("user.has_email", "is", False), ["linus"]),
        (cond("user.is_staff", "is", False), ["ada", "linus"]),
        (cond("user.is_staff", "is", True), ["grace"]),
        (cond("user.date_joined", "within_days", 30), ["grace"]),
        (cond("user.date_joined", "older_than_days", 30), ["ada", "linus"]),
        (cond("user.date_joined", "older_than_days", 365), ["ada"]),
        (cond("user.last_login", "within_days", 7), ["ada"]),
        (cond("user.last_login", "not_within_days", 7), ["grace", "linus"]),
        (cond("user.last_login", "never", no_value=True), ["grace"]),
        (cond("user.last_login", "never", None), ["grace"]),
        (cond("user.last_login", "ever", no_value=True), ["ada", "linus"]),
        (cond("profile.locale", "in", ["en"]), ["ada", "linus"]),
        (cond("profile.locale", "in", ["zh-hans"]), ["grace"]),
        (cond("profile.locale", "not_in", ["en"]), ["grace"]),
        (cond("profile.locale", "not_in", ["zh-hans"]), ["ada", "linus"]),
        (cond("profile.timezone", "in", ["UTC"]), ["linus"]),
        (cond("profile.timezone", "in", ["Asia/Shanghai", "Europe/London"]), ["ada", "grace"]),
        (cond("profile.timezone", "not_in", ["UTC"]), ["ada", "grace"]),
        (cond("profile.has_phone", "is", True), ["ada"]),
        (cond("profile.has_phone", "is", False), ["grace", "linus"]),
        (cond("user.groups", "in", ["Beta testers"]), ["ada"]),
        (cond("user.groups", "not_in", ["Beta testers"]), ["grace", "linus"]),
        (cond("shop.paid_orders", "gte", {"count": 2, "days": 90}), ["ada"]),
        (cond("shop.paid_orders", "gte", {"count": 1, "days": 30}), ["ada", "grace"]),
        (cond("shop.paid_orders", "gte", {"count": 3, "days": 365}), ["ada", "grace"]),
        (cond("shop.paid_orders", "gte", {"count": 4, "days": 365}), []),
        (cond("shop.paid_orders", "lt", {"count": 2, "days": 90}), ["grace", "linus"]),
        (cond("shop.vip", "is", True), ["ada"]),
        (cond("shop.vip", "is", False), ["grace", "linus"]),
        (cond("shop.customer", "is", True), ["ada", "grace"]),
        (cond("shop.customer", "is", False), ["linus"]),
        # Groups: all / any / not, nesting, and empty groups that add no condition.
        ({"all": [cond("profile.locale", "in", ["en"]), cond("user.has_email", "is", True)]}, ["ada"]),
        ({"any": [cond("shop.vip", "is", True), cond("user.is_staff", "is", True)]}, ["ada", "grace"]),
        ({"not": cond("shop.customer", "is", True)}, ["linus"]),
        ({"not": {"any": [cond("shop.vip", "is", True), cond("user.is_staff", "is", True)]}}, ["linus"]),
        (
            {"all": [
                cond("profile.locale", "in", ["en"]),
                {"not": {"any": [
                    cond("shop.vip", "is", True), cond("shop.paid_orders", "gte", {"count": 1, "days": 30}),
                ]}},
            ]},
            ["linus"],
        ),
        ({"any": [{"all": []}, cond("user.username", "eq", "ada")]}, ["ada"]),
        ({"all": [{"any": []}, {"not": {"all": []}}]}, EVERYONE),
    ],
)
def test_rules_select_exactly_the_matching_active_users(people, rules, expected):
    assert audience_rules_validate(rules=rules) == []
    assert matching(rules) == expected


def test_date_conditions_use_the_start_of_the_day(people, settings):
    joined = people["ada"].date_joined.date()
    day = joined.isoformat()
    next_day = (joined + timedelta(days=1)).isoformat()
    assert matching(cond("user.date_joined", "before", next_day)) == ["ada"]
    assert "ada" not in matching(cond("user.date_joined", "before", day))
    assert matching(cond("user.date_joined", "on_or_after", next_day)) == ["grace", "linus"]


def test_static_audience_membership_is_a_condition(people):
    vips = AudienceFactory(name="Hand-picked", kind="static")
    audience_members_add(audience=vips, user_ids=[people["grace"].pk, people["ghost"].pk])
    assert matching(cond("audience.member", "in", [vips.pk])) == ["grace"]
    assert matching(cond("audience.member", "not_in", [vips.pk])) == ["ada", "linus"]
    rules_audience = AudienceFactory(kind="rules")
    errors = audience_rules_validate(rules=cond("audience.member", "in", [rules_audience.pk]))
    assert errors and "not one of the choices" in errors[0]


def test_counts_are_exact_despite_to_many_relations(people):
    """Ada has three paid orders and two groups: no condition may count her more than once."""
    people["ada"].groups.add(Group.objects.create(name="Second group"))
    rules = {"any": [
        cond("shop.paid_orders", "gte", {"count": 1, "days": 90}),
        cond("user.groups", "in", ["Beta testers", "Second group"]),
        cond("audience.member", "not_in", [AudienceFactory(kind="static").pk]),
    ]}
    audience = AudienceFactory(rules=rules)
    users = audience_users(audience=audience)
    assert users.count() == 3
    assert list(users.values_list("username", flat=True)) == ["ada", "grace", "linus"]
    assert audience_preview(rules=rules).count == 3
    assert audience_sizes(audiences=[audience])[audience.pk] == 3


# --- Validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"all": [cond("user.is_staff", "is", True), {"field": "foo", "op": "eq", "value": 1}]},
         "Condition 2: unknown field 'foo'"),
        ({"all": [{"any": [cond("user.is_staff", "is", True), {"field": "foo", "op": "eq"}]}]},
         "Condition 2 of group 1: unknown field 'foo'"),
        ({"any": [{"all": [{"not": {"any": [{"field": "nope", "op": "x"}]}}]}]},
         "Condition 1 of group 1 of group 1: unknown field 'nope'"),
        (cond("user.email", "gte", "x"), "'gte' is not one of its operators"),
        (cond("user.email", "contains", ""), "enter a value"),
        (cond("user.email", "contains", "x" * 201), "longer than 200"),
        (cond("user.email", "contains", 5), "must be text"),
        (cond("user.email", "contains", "nul\x00"), "cannot be stored"),
        (cond("user.email", "contains", "\ud800"), "cannot be stored"),
        ({"field": "user.email", "op": "contains"}, "enter a value"),
        (cond("user.is_staff", "is", 1), "true or false"),
        (cond("user.is_staff", "is", "yes"), "true or false"),
        (cond("user.date_joined", "within_days", 0), "between 1 and 3650"),
        (cond("user.date_joined", "within_days", 10**6), "between 1 and 3650"),
        (cond("user.date_joined", "within_days", 10**5000), "between 1 and 3650"),
        (cond("user.date_joined", "within_days", 7.0), "whole number"),
        (cond("user.date_joined", "within_days", True), "whole number"),
        (cond("user.date_joined", "before", "2025-02-30"), "not a real date"),
        (cond("user.date_joined", "before", "31/01/2025"), "a date like"),
        (cond("user.date_joined", "before", "0001-01-01"), "the year must be"),
        (cond("user.last_login", "never", 3), "takes no value"),
        (cond("profile.locale", "in", []), "at least one"),
        (cond("profile.locale", "in", "en"), "must be a list"),
        (cond("profile.locale", "in", ["fr"]), "'fr' is not one of the choices"),
        (cond("profile.timezone", "in", ["Mars/Olympus"]), "not one of the choices"),
        (cond("user.groups", "in", ["No such group"]), "not one of the choices"),
        (cond("audience.member", "in", ["1"]), "is not an id"),
        (cond("audience.member", "in", [10**30]), "is not an id"),
        (cond("shop.paid_orders", "gte", {"count": 2}), '{"count": number, "days": number}'),
        (cond("shop.paid_orders", "gte", {"count": 0, "days": 90}), "the count must be between"),
        (cond("shop.paid_orders", "gte", {"count": 2, "days": 90, "x": 1}), '{"count": number'),
        ({"field": "user.email", "op": "contains", "value": "a", "extra": 1}, "unknown key 'extra'"),
        ({"all": {"field": "user.email"}}, '"all" must hold a list'),
        ({"all": [], "any": []}, "exactly one key"),
        ({"all": [[1, 2]]}, "Condition 1: expected a group or a condition, found a list"),
        ([], "The rules: expected a group or a condition"),
        ("everyone", "found text"),
        ({"all": [{}]}, "Condition 1: choose a field"),
    ],
)
def test_invalid_rules_are_reported_with_their_position(rules, message):
    errors = audience_rules_validate(rules=rules)
    assert errors, rules
    assert any(message in error for error in errors), errors
    with pytest.raises(AudienceRuleError) as exc_info:
        audience_q(rules=rules)
    assert exc_info.value.messages == errors


def test_every_problem_is_reported_not_just_the_first():
    errors = audience_rules_validate(rules={"all": [
        {"field": "foo", "op": "x"}, cond("user.is_staff", "is", "no"), cond("user.email", "contains", "ok"),
    ]})
    assert [e.split(":")[0] for e in errors] == ["Condition 1", "Condition 2 (Is staff)"]


def test_depth_and_size_are_capped():
    tree = cond("user.is_staff", "is", True)
    for _ in range(MAX_DEPTH + 1):
        tree = {"all": [tree]}
    assert any("nested more than" in e for e in audience_rules_validate(rules=tree))
    big = {"any": [cond("user.is_staff", "is", True)] * (MAX_NODES + 5)}
    assert audience_rules_validate(rules=big) == [f"The rules have more than {MAX_NODES} conditions and groups."]


def test_listed_values_are_capped_across_the_tree():
    """Listed values become SQL parameters; a tree may not list more than 500 in total."""
    zones = sorted(canonical_zones() | zone_aliases())  # every name that means a place (not Factory)
    tree = {"any": [cond("profile.timezone", "in", zones[n * 200 : (n + 1) * 200]) for n in range(3)]}
    assert audience_rules_validate(rules=tree) == ["Condition 3: the rules list more than 500 values in total"]
    assert audience_rules_validate(rules={"any": tree["any"][:2]}) == []


def test_parse_turns_any_text_into_a_tree_or_a_rule_error():
    assert audience_rules_parse(text="") == {}
    assert audience_rules_parse(text=' {"all": []} ') == {"all": []}
    deep_but_parseable = "[" * 60 + "]" * 60
    for bad in ["{", "[" * 100_000, deep_but_parseable, '{"all": [NaN]}', "x" * 70_000, '{"a": 1e99999}', "9" * 5000]:
        with pytest.raises(AudienceRuleError):
            audience_rules_parse(text=bad)


# --- Property test: malformed trees never raise anything but AudienceRuleError ---------------

FIELD_KEYS = [f.key for f in audience_fields]
OPS = sorted({op for f in audience_fields for op in f.ops})
text_with_surrogates = st.text(st.characters(exclude_categories=()), max_size=8)
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.integers(-3, 4000),
    st.floats(), text_with_surrogates,
    st.sampled_from(["en", "zh-hans", "UTC", "Asia/Shanghai", "Beta testers", "2025-01-31", "2025-13-01", "", " "]),
)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(["all", "any", "not", "field", "op", "value", "count", "days"]), st.text(max_size=3)
            ),
            children, max_size=4,
        ),
    ),
    max_leaves=20,
)
conditions = st.fixed_dictionaries(
    {"field": st.one_of(st.sampled_from(FIELD_KEYS), leaves), "op": st.one_of(st.sampled_from(OPS), leaves)},
    optional={
        "value": st.one_of(
            json_values,
            st.lists(st.sampled_from(["en", "zh-hans", "UTC", "Beta testers", 1, 2]), max_size=3),
            st.fixed_dictionaries({"count": st.integers(-2, 200_000), "days": st.integers(-2, 5000)}),
        ),
        "extra": leaves,
    },
)
rule_trees = st.recursive(
    st.one_of(conditions, json_values),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, max_size=4)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, max_size=4)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=25,
)


@settings(
    max_examples=400, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rules=st.one_of(rule_trees, json_values))
def test_any_json_is_either_a_rule_error_or_a_query_that_runs(people, rules):
    errors = audience_rules_validate(rules=rules)
    assert isinstance(errors, list) and all(isinstance(e, str) and e for e in errors)
    try:
        q = audience_q(rules=rules)
    except AudienceRuleError as exc:
        assert errors and exc.messages == errors
        return
    assert errors == []
    assert isinstance(q, Q)
    users = User.objects.filter(is_active=True).filter(q)
    ids = list(users.values_list("pk", flat=True))
    assert users.count() == len(ids) == len(set(ids))


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(st.characters(exclude_categories=())), st.builds(json.dumps, json_values)))
def test_any_text_parses_to_json_or_a_rule_error(text):
    try:
        audience_rules_parse(text=text)
    except AudienceRuleError as exc:
        assert exc.messages


# --- Users, preview, sizes, chunks ------------------------------------------------------------


def test_static_audience_is_its_active_members_in_pk_order(people):
    audience = AudienceFactory(kind="static")
    audience_members_add(audience=audience, user_ids=[people["linus"].pk, people["ghost"].pk, people["ada"].pk])
    assert list(audience_users(audience=audience).values_list("username", flat=True)) == ["ada", "linus"]


def test_a_broken_rule_audience_raises_a_rule_error(people):
    audience = AudienceFactory(rules={"all": [{"field": "gone.field", "op": "eq", "value": 1}]})
    with pytest.raises(AudienceRuleError, match="unknown field 'gone.field'"):
        audience_users(audience=audience)
    with pytest.raises(AudienceRuleError):
        audience_user_ids(audience=audience)  # eagerly, before the first chunk


def test_preview_counts_and_samples_in_two_queries(people, django_assert_num_queries):
    for n in range(15):
        user = UserFactory(username=f"bulk{n:02d}", email=f"bulk{n}@example.com")
        RecipientProfileFactory(user=user, locale="zh-hans")
    rules = {"all": [cond("user.email", "contains", "example"), cond("profile.locale", "in", ["zh-hans", "en"])]}
    with django_assert_num_queries(2):
        preview = audience_preview(rules=rules)
    assert preview.count == 16
    assert len(preview.sample) == 10
    assert preview.sample[0] == {
        "id": people["ada"].pk, "username": "ada", "full_name": "Ada Lovelace", "email": "ada@example.com",
        "locale": "en", "timezone": "Europe/London",
    }
    with django_assert_num_queries(1):
        assert audience_preview(rules=cond("user.username", "eq", "nobody")).count == 0


def test_preview_shows_profile_defaults_for_users_without_a_profile(people):
    preview = audience_preview(rules=cond("user.username", "eq", "linus"))
    assert preview.sample[0]["locale"] == "en"
    assert preview.sample[0]["timezone"] == "UTC"


def test_preview_of_a_saved_static_audience(people):
    audience = AudienceFactory(kind="static")
    audience_members_add(audience=audience, user_ids=[people["grace"].pk])
    preview = audience_preview(audience=audience, sample_size=5)
    assert preview.count == 1 and preview.sample[0]["username"] == "grace"
    with pytest.raises(TypeError):
        audience_preview()


def test_sizes_of_many_audiences_take_two_queries(people, django_assert_num_queries):
    static = AudienceFactory(kind="static")
    audience_members_add(audience=static, user_ids=[people["ada"].pk, people["ghost"].pk])
    empty_static = AudienceFactory(kind="static")
    rule_audiences = [
        AudienceFactory(rules=cond("profile.locale", "in", ["en"])),
        AudienceFactory(rules={}),
        AudienceFactory(rules=cond("user.groups", "in", ["Beta testers"])),
        AudienceFactory(rules=cond("shop.paid_orders", "gte", {"count": 2, "days": 90})),
    ]
    broken = AudienceFactory(rules={"any": [{"field": "nope"}]})
    audiences = [static, empty_static, *rule_audiences, broken]
    # One for members, one aggregate for the rules, one for the group names the rules mention.
    with django_assert_num_queries(3):
        sizes = audience_sizes(audiences=audiences)
    assert sizes == {
        static.pk: 1, empty_static.pk: 0,
        rule_audiences[0].pk: 2, rule_audiences[1].pk: 3, rule_audiences[2].pk: 1, rule_audiences[3].pk: 1,
        broken.pk: None,
    }


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 25, 2000])
def test_keyset_chunks_cover_every_id_exactly_once(chunk_size):
    users = UserFactory.create_batch(25)
    for user in users[::5]:
        user.is_active = False
        user.save(update_fields=["is_active"])
    audience = AudienceFactory(rules=cond("user.username", "startswith", "user"))
    chunks = list(audience_user_ids(audience=audience, chunk_size=chunk_size))
    flat = [pk for chunk in chunks for pk in chunk]
    expected = sorted(u.pk for u in users if u.is_active)
    assert flat == expected
    assert all(0 < len(chunk) <= chunk_size for chunk in chunks)
    assert len(chunks) == -(-len(expected) // chunk_size)


def test_chunks_stream_lazily_with_one_query_each(django_assert_num_queries):
    UserFactory.create_batch(5)
    audience = AudienceFactory(rules={})
    with django_assert_num_queries(0):
        chunks = audience_user_ids(audience=audience, chunk_size=2)
    with django_assert_num_queries(3):
        assert [len(c) for c in chunks] == [2, 2, 1]
    with pytest.raises(ValueError):
        audience_user_ids(audience=audience, chunk_size=0)


# --- Static members and CSV import -------------------------------------------------------------


def test_members_add_ignores_duplicates_and_unknown_ids_and_is_audited(people):
    audience = AudienceFactory(kind="static")
    staff = UserFactory(username="marketer", is_staff=True)
    assert audience_members_add(audience=audience, user_ids=[people["ada"].pk, people["grace"].pk], actor=staff) == 2
    assert audience_members_add(audience=audience, user_ids=[people["ada"].pk, people["linus"].pk, 999_999]) == 1
    assert audience_members_add(audience=audience, user_ids=[]) == 0
    assert AudienceMember.objects.filter(audience=audience).count() == 3
    entry = AuditEntry.objects.filter(action="audience.members_added").order_by("pk").first()
    assert entry.actor == staff and entry.changes == {"added": 2}
    assert audience_members_remove(audience=audience, user_ids=[people["ada"].pk, people["ghost"].pk]) == 1
    assert names(audience_users(audience=audience)) == ["grace", "linus"]


def test_rule_audiences_have_no_members_to_add(people):
    with pytest.raises(AudienceNotStaticError):
        audience_members_add(audience=AudienceFactory(kind="rules"), user_ids=[people["ada"].pk])


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_import_matches_emails_and_usernames_and_reports_unknown_rows(people, encoding):
    UserFactory(username="张伟", email="zhang@example.cn")
    audience = AudienceFactory(kind="static")
    text = (
        "email,name\nADA@example.com,Ada\ngrace,Grace\n张伟,Zhang\n\n"
        "nobody@example.com,?\nada@example.com,dup\n无名\n"
    )
    result = audience_members_import_csv(audience=audience, data=text.encode(encoding))
    assert result.rows == 6
    assert result.matched == 3 and result.added == 3
    assert result.unknown == ["nobody@example.com", "无名"] and result.unknown_count == 2
    assert names(audience_users(audience=audience)) == ["ada", "grace", "张伟"]
    again = audience_members_import_csv(audience=audience, data=text.encode(encoding))
    assert again.added == 0 and again.matched == 3


def test_csv_import_without_header_uses_the_first_column(people):
    audience = AudienceFactory(kind="static")
    result = audience_members_import_csv(audience=audience, data=b"linus\r\ngrace@corp.cn\r\n")
    assert (result.rows, result.added, result.unknown) == (2, 2, [])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe\x00a\x00b" * 3, "not UTF-8 or GBK"),
        (b"a@b.c\x00\n", "not a text file"),
        (b"x" * (5 * 1024 * 1024 + 1), "larger than 5 MB"),
    ],
)
def test_csv_import_refuses_unreadable_files(people, data, message):
    with pytest.raises(AudienceImportError, match=message):
        audience_members_import_csv(audience=AudienceFactory(kind="static"), data=data)


# --- The registry ------------------------------------------------------------------------------


def test_integrating_apps_register_fields_with_checked_definitions(people):
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        register_audience_field("shop.vip", label="VIP", ops={"is": "is"}, value_type="bool", to_q=lambda op, v: Q())
    with pytest.raises(ImproperlyConfigured, match="must look like"):
        register_audience_field("Bad Key", label="x", ops={"is": "is"}, value_type="bool", to_q=lambda op, v: Q())
    with pytest.raises(ImproperlyConfigured, match="unknown value type"):
        register_audience_field("test.x", label="x", ops={"is": "is"}, value_type="colour", to_q=lambda op, v: Q())
    with pytest.raises(ImproperlyConfigured, match="needs a value_type"):
        register_audience_field("test.x", label="x", ops={"is": "is"}, to_q=lambda op, v: Q())
    register_audience_field(
        "test.first_name_length", label="First name length", ops={"eq": "is"}, value_type="integer",
        to_q=lambda op, value: Q(first_name__regex=rf"^.{{{value}}}$"),
    )
    try:
        assert matching(cond("test.first_name_length", "eq", 5)) == ["grace", "linus"]
        schema = audience_builder_schema()
        assert {"key": "eq", "label": "is", "type": "integer"} in next(
            f for f in schema["fields"] if f["key"] == "test.first_name_length"
        )["ops"]
    finally:
        audience_fields.unregister("test.first_name_length")
    assert "test.first_name_length" not in audience_fields


def test_builder_schema_lists_shop_fields_and_live_choices(people):
    AudienceFactory(name="Newsletter list", kind="static")
    schema = audience_builder_schema()
    by_key = {f["key"]: f for f in schema["fields"]}
    assert by_key["shop.paid_orders"]["ops"][0] == {"key": "gte", "label": "at least", "type": "count_days"}
    assert by_key["shop.paid_orders"]["group"] == "Shop"
    assert ["Beta testers", "Beta testers"] in [list(c) for c in by_key["user.groups"]["choices"]]
    assert [c[1] for c in by_key["audience.member"]["choices"]] == ["Newsletter list"]
    json.dumps(schema)  # rendered into the page as JSON


def test_audience_model_default_rules_mean_everyone(people):
    audience = Audience.objects.create(name="All")
    assert names(audience_users(audience=audience)) == EVERYONE
