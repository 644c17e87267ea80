"""Marketer-authored templates: the sandbox against an SSTI corpus, the caps, escaping, locale
fallback, the email's layout/inlining/text part, and save-time problems with line numbers."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from notifications.templating import (
    BASE_NAMES,
    RECIPIENT_FIELDS,
    TemplateRenderError,
    compile_parts,
    compile_template,
    message_context,
    recipient_context,
    template_problems,
    template_trial_problems,
)
from notifications.templating.context import instance_context
from tests.factories import (
    MessageTemplateFactory,
    MessageTemplateVariantFactory,
    OrderFactory,
    RecipientProfileFactory,
    UserFactory,
)

RECIPIENT = {
    "first_name": "Ada", "last_name": "Lovelace", "full_name": "Ada Lovelace", "username": "ada",
    "email": "ada@example.com", "locale": "en", "timezone": "Europe/London", "phone_last4": "0123",
}
CONTEXT = {"recipient": RECIPIENT, "campaign": {"id": 7, "name": "Spring"}}

# Each renders harmlessly or is refused with a TemplateRenderError; never a hang, a MemoryError,
# a leaked object or secret, or any other exception.
SSTI_CORPUS = [
    # Reaching Python internals
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''['__class__'] }}",
    "{{ ''|attr('__class__') }}",
    "{{ ()|attr('__class__')|attr('__base__') }}",
    "{{ recipient|attr('__class__') }}",
    "{{ recipient.__class__.__init__.__globals__ }}",
    "{{ (recipient.items()|list)[0].__class__ }}",
    "{{ recipient.first_name.__len__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self }}",
    "{{ self._TemplateReference__context }}",
    "{{ range }}",
    "{{ range.__call__.__globals__ }}",
    "{{ range(3) }}",
    "{{ ''.upper }}",
    "{{ ''.upper|string }}",
    "{{ 'x' ~ ''.upper }}",
    "{{ recipient.items }}",
    "{{ recipient.first_name|map('upper') }}",
    "{{ loop }}",
    "{{ config }}",
    "{{ settings.SECRET_KEY }}",
    "{{ request.environ }}",
    "{{ [].pop() }}",
    "{{ recipient.update({'first_name': 'x'}) }}",
    "{{ 'x'.join(['a', 'b']) }}",
    # format tricks
    "{{ '{0.__class__}'.format(recipient) }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(recipient) }}",
    "{{ '{0}'.format(''.upper) }}",
    "{{ '{:>999999999}'.format('x') }}",
    "{{ '{0:{1}}'.format('x', 10**9) }}",
    "{{ ''.format_map(recipient) }}",
    "{{ '%s'|format(''.upper) }}",
    "{{ '%s' % recipient.items }}",
    "{{ '%999999999s' % 'x' }}",
    "{{ '%*s' % (10**9, 'x') }}",
    "{{ '%(a)s%(a)s' * 9999 % {'a': 'x' * 9999} }}",
    "{{ '%.999999999f'|format(1.5) }}",
    # Memory and time bombs
    "{{ 'x' * 10**9 }}",
    "{{ [1] * 10**9 }}",
    "{{ [[1] * 100000] * 100000 }}",
    "{{ 'a'|center(10**9) }}",
    "{{ 'a'|indent(10**9) }}",
    "{{ 'ab'|replace('', 'x' * 99999) }}",
    "{{ 'x'|wordwrap(1, wrapstring='y' * 99999) }}",
    "{{ range(10)|batch(10**9, 'x')|list }}",
    "{{ range(10)|slice(10**9)|list }}",
    "{{ 9 ** (9 ** 9) }}",
    "{{ 2 ** (10 ** 9) }}",
    "{{ (2 ** 4000) * (2 ** 4000) }}",
    "{{ range(10**9)|list }}",
    "{{ range(100000)|join(',' * 99999) }}",
    "{{ range(100000)|map('string')|map('center', 1000)|join }}",
    "{{ (range(100000)|list)|sum(start=[]) }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% for a in 'x' * 99999 %}{% for b in 'x' * 99999 %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'x' * 99999 }}{% endfor %}",
    "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
    "{% set ns = namespace(n=2) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}",
    "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
    # Constructs the dialect leaves out
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% set x %}{{ recipient }}{% endset %}{{ x }}",
    "{% filter upper %}{{ recipient.first_name }}{% endfilter %}",
    "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
    "{% include 'admin/base.html' %}",
    "{% extends 'admin/base.html' %}",
    "{% import 'admin/base.html' as base %}",
    "{% autoescape false %}{{ recipient.first_name }}{% endautoescape %}",
    "{% block b %}x{% endblock %}",
    # Ordinary mistakes
    "{{ nope }}",
    "{{ recipient.nope }}",
    "{{ 1 / 0 }}",
    "{{ recipient.first_name|nofilter }}",
    "{{ unclosed",
]

LEAKS = re.compile(r"<class|<function|<built-in|<bound|object at 0x|__globals__|<module|TemplateReference")


def rendered_or_refused(source: str, channel: str) -> str | TemplateRenderError:
    parts = {"sms_text": source} if channel == "sms" else {"email_subject": "Hi", "email_body": source}
    try:
        return compile_parts(parts=parts).render(channel=channel, locale="en", context=CONTEXT)
    except TemplateRenderError as exc:
        return exc


@pytest.mark.parametrize("channel", ["sms", "email"])
@pytest.mark.parametrize("source", SSTI_CORPUS)
def test_ssti_corpus_renders_harmlessly_or_is_refused(source, channel):
    outcome = rendered_or_refused(source, channel)
    text = str(outcome) if isinstance(outcome, TemplateRenderError) else " ".join(outcome.values())
    assert settings.SECRET_KEY not in text
    assert not LEAKS.search(text), text[:300]
    if isinstance(outcome, TemplateRenderError):
        assert str(outcome).strip()
    else:
        assert len(outcome.get("text", "")) <= 100_000 + 2_000


@pytest.mark.parametrize("source", SSTI_CORPUS)
def test_ssti_corpus_is_checked_on_save_without_crashing(source):
    problems = template_problems(parts={"email_body": source, "sms_text": source}, allowed_names=BASE_NAMES)
    assert all(p.part in {"email_body", "sms_text"} and str(p) for p in problems)
    trial = template_trial_problems(parts={"sms_text": source})
    assert all(str(p) for p in trial)


LOOP_BOMB = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


@pytest.mark.parametrize("source", [
    LOOP_BOMB,
    "{% for a in 'x' * 99999 %}{% for b in 'x' * 99999 %}{% endfor %}{% endfor %}",
])
def test_loop_bombs_stop_at_the_time_cap(source):
    outcome = rendered_or_refused(source, "sms")
    assert isinstance(outcome, TemplateRenderError)
    assert "Rendering took longer than 200 ms" in str(outcome)


def test_the_time_cap_is_a_setting(settings):
    settings.SIGNALBOX_TEMPLATE_RENDER_MS = 30
    outcome = rendered_or_refused(LOOP_BOMB, "sms")
    assert "Rendering took longer than 30 ms" in str(outcome)


def test_the_time_cap_counts_the_render_s_own_cpu_not_time_it_was_descheduled(settings):
    """A busy machine (the render's thread waiting for a core) must not fail a benign message; a
    render burning CPU is stopped. The budget's clock is the thread's CPU time."""
    import time

    from notifications.templating.limits import Budget

    settings.SIGNALBOX_TEMPLATE_RENDER_MS = 30
    budget = Budget.start()
    time.sleep(0.1)  # 100 ms of wall time, no CPU: as if other processes had the cores
    budget.check()  # within budget
    spin_until = time.thread_time() + 0.05
    while time.thread_time() < spin_until:  # 50 ms of this thread's CPU
        pass
    with pytest.raises(TemplateRenderError, match="longer than 30 ms"):
        budget.check()


def test_the_time_cap_does_not_count_garbage_collections_that_ran_during_the_render(settings):
    """A full collection of a big worker's heap can run in the render's thread and take longer than
    the cap; it is not the template's time (it once failed a benign email of 8,000)."""
    import gc
    import time

    from notifications.templating.limits import Budget

    settings.SIGNALBOX_TEMPLATE_RENDER_MS = 20
    heap = [[i] for i in range(1_500_000)]  # a big heap: a full collection walks every list
    try:
        budget = Budget.start()
        before = time.thread_time()
        gc.collect()
        assert time.thread_time() - before > 0.02  # the collection alone is over the cap
        budget.check()  # within budget: the collection is off the clock
        spin_until = time.thread_time() + 0.03
        while time.thread_time() < spin_until:  # the render's own CPU still counts
            pass
        with pytest.raises(TemplateRenderError, match="longer than 20 ms"):
            budget.check()
    finally:
        del heap


@pytest.mark.parametrize("source", [
    "{% for i in range(100000) %}{{ 'x' * 99999 }}{% endfor %}",
    "{{ 'x' * 10**9 }}",
    "{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}",
])
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_huge_output_stops_at_the_output_cap(source, channel):
    outcome = rendered_or_refused(source, channel)
    assert isinstance(outcome, TemplateRenderError)
    assert "Output is larger than 100 KB" in str(outcome)


def test_the_output_cap_is_a_setting(settings):
    settings.SIGNALBOX_TEMPLATE_MAX_OUTPUT = 2000
    assert "Output is larger than 2 KB" in str(rendered_or_refused("{{ 'x' * 2001 }}", "sms"))
    assert rendered_or_refused("{{ 'x' * 1999 }}", "sms")["text"] == "x" * 1999


def test_unknown_names_are_errors_with_their_line():
    outcome = rendered_or_refused("Hello\n{{ recipient.first_name }}\n{{ coupon }}", "sms")
    assert isinstance(outcome, TemplateRenderError)
    assert str(outcome) == "Line 3: 'coupon' is undefined"
    assert outcome.line == 3 and outcome.part == "sms_text"


def test_ordinary_templates_work():
    source = (
        "{% set total = namespace(n=0) %}{% for p in [3, 4] %}{% set total.n = total.n + p %}{% endfor %}"
        "{{ recipient.first_name|upper }} {{ total.n }} {{ '%.2f'|format(2.5) }} {{ '{:,}'.format(1234567) }} "
        "{{ ['b', 'a']|sort|join('/') }} {{ recipient.get('last_name') }} {{ range(3)|list }} "
        "{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %} {{ campaign.name ~ '!' }} {{ none }}."
    )
    assert rendered_or_refused(source, "sms")["text"] == "ADA 7 2.50 1,234,567 a/b Lovelace [0, 1, 2] a=1 Spring! ."


# --- Escaping ------------------------------------------------------------------------------------

HOSTILE = {**RECIPIENT, "first_name": "<script>alert(1)</script>", "last_name": "[click](https://evil.example/)"}


def test_email_values_cannot_add_markup_or_markdown():
    compiled = compile_parts(parts={
        "email_subject": "Hi {{ recipient.first_name }}",
        "email_body": (
            "Dear **{{ recipient.first_name }}** {{ recipient.last_name }}\n\n[Shop]({{ site_url }}/shop?a=1&b=2)"
        ),
    })
    content = compiled.render(channel="email", locale="en", context={"recipient": HOSTILE})
    html = content["html"]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "evil.example/\"" not in html and 'href="https://evil.example' not in html
    assert "[click](https://evil.example/)" in html  # shown as the text it is
    assert "<strong" in html  # the author's own Markdown still works
    assert f'href="{settings.SITE_URL.rstrip("/")}/shop?a=1&amp;b=2"' in html
    assert "<title>Hi &lt;script&gt;alert(1)&lt;/script&gt;</title>" in html
    assert content["subject"] == "Hi <script>alert(1)</script>"  # a header is text, not HTML
    assert "Dear <script>alert(1)</script> [click](https://evil.example/)" in content["text"]


def test_text_channels_are_plain_text():
    compiled = compile_parts(
        parts={"sms_text": "Hi {{ recipient.first_name }} & co", "chat_text": "*{{ recipient.last_name }}*"}
    )
    assert compiled.render(channel="sms", locale="en", context={"recipient": HOSTILE})["text"] == \
        "Hi <script>alert(1)</script> & co"
    assert compiled.render(channel="chat", locale="en", context={"recipient": HOSTILE}) == {
        "text": "*[click](https://evil.example/)*", "locale": "en",
    }


@pytest.mark.parametrize("url", ["javascript:alert(1)", "//evil.example/", "data:text/html,x"])
def test_links_must_be_web_links_or_paths(url):
    compiled = compile_parts(parts={"inapp_title": "T", "inapp_url": "{{ link }}"})
    with pytest.raises(TemplateRenderError, match="must start with"):
        compiled.render(channel="inapp", locale="en", context={"recipient": RECIPIENT, "link": url})


# --- Channel shapes and locales ------------------------------------------------------------------

PARTS = {
    "email_subject": "Hello {{ recipient.first_name }}",
    "email_body": (
        "# Welcome\n\nHi {{ recipient.first_name }}, see [your account]({{ site_url }}/account).\n\n- one\n- two"
    ),
    "sms_text": "Hi {{ recipient.first_name }}",
    "inapp_title": "Welcome {{ recipient.first_name }}",
    "inapp_body": "Body for {{ recipient.first_name }}",
    "inapp_url": "/notifications/",
    "chat_text": "Chat for {{ recipient.first_name }}",
}


def test_each_channel_has_its_delivery_content_shape():
    compiled = compile_parts(parts=PARTS)
    assert set(compiled.render(channel="email", locale="en", context=CONTEXT)) == {"subject", "text", "html", "locale"}
    assert compiled.render(channel="sms", locale="en", context=CONTEXT) == {"text": "Hi Ada", "locale": "en"}
    assert compiled.render(channel="inapp", locale="en", context=CONTEXT) == {
        "title": "Welcome Ada", "body": "Body for Ada", "url": "/notifications/", "locale": "en",
    }
    # No push parts: web push uses the in-app ones.
    assert compiled.render(channel="webpush", locale="en", context=CONTEXT)["title"] == "Welcome Ada"
    assert compiled.render(channel="chat", locale="en", context=CONTEXT)["text"] == "Chat for Ada"
    # A WeChat template message and an app push are titled like web push, with the same fallback.
    for channel in ("wechat", "mobilepush"):
        assert compiled.render(channel=channel, locale="en", context=CONTEXT) == {
            "title": "Welcome Ada", "body": "Body for Ada", "url": "/notifications/", "locale": "en",
        }
    assert compiled.channels() == ["email", "sms", "inapp", "webpush", "chat", "wechat", "mobilepush"]


def test_a_missing_part_is_a_clear_error():
    compiled = compile_parts(parts={"inapp_title": "Hi"})
    with pytest.raises(TemplateRenderError, match="The template has no SMS text"):
        compiled.render(channel="sms", locale="en", context=CONTEXT)
    assert compiled.channels() == ["inapp", "webpush", "wechat", "mobilepush"]


def test_a_broken_part_fails_only_its_own_channel():
    compiled = compile_parts(parts={**PARTS, "sms_text": "{{ broken"})
    assert compiled.render(channel="inapp", locale="en", context=CONTEXT)["title"] == "Welcome Ada"
    with pytest.raises(TemplateRenderError) as raised:
        compiled.render(channel="sms", locale="en", context=CONTEXT)
    assert raised.value.part == "sms_text" and str(raised.value).startswith("Line 1:")


def test_locale_variants_fall_back_per_part_and_by_language():
    compiled = compile_parts(parts=PARTS, variants={"zh-hans": {"email_subject": "你好 {{ recipient.first_name }}"}})
    zh = compiled.render(channel="email", locale="zh-hans", context=CONTEXT)
    assert zh["subject"] == "你好 Ada" and zh["locale"] == "zh-hans"
    assert "Welcome" in zh["html"]  # the empty body part falls back to the template's
    assert 'lang="zh-hans"' in zh["html"]
    assert compiled.render(channel="email", locale="zh_CN", context=CONTEXT)["subject"] == "你好 Ada"
    assert compiled.render(channel="email", locale="zh", context=CONTEXT)["locale"] == "zh-hans"
    fallback = compiled.render(channel="email", locale="fr", context=CONTEXT)
    assert (fallback["subject"], fallback["locale"]) == ("Hello Ada", "en")
    assert compiled.render(channel="sms", locale="zh-hans", context=CONTEXT) == {"text": "Hi Ada", "locale": "zh-hans"}


# --- The email -----------------------------------------------------------------------------------

def test_email_is_markdown_in_the_layout_with_css_inlined_and_a_text_part():
    compiled = compile_parts(parts=PARTS)
    content = compiled.render(channel="email", locale="en", context={**CONTEXT, "unsubscribe_url": "https://x.test/u/t/"})
    html, text = content["html"], content["text"]
    assert html.startswith("<!DOCTYPE html>") and "Signalbox" in html
    assert re.search(r'<h1 style="[^"]*font-size: 24px', html)
    assert re.search(r'<li style="[^"]*margin', html)
    assert re.search(r'<a href="[^"]*/account" style="[^"]*color: #4f46e5', html)
    assert "@media" in html  # responsive rules stay in a <style>
    assert 'href="https://x.test/u/t/"' in html and ">Unsubscribe<" in html
    assert "Manage preferences" in html
    assert "Welcome\n=======" in text
    assert "Hi Ada, see your account (" in text and "/account)" in text
    assert "- one\n- two" in text
    assert "Unsubscribe: https://x.test/u/t/" in text
    assert "<" not in text


def test_email_without_unsubscribe_link_has_no_unsubscribe_footer():
    content = compile_parts(parts=PARTS).render(channel="email", locale="en", context=CONTEXT)
    assert "Unsubscribe" not in content["html"] and "Unsubscribe" not in content["text"]
    assert "Manage preferences" in content["html"]


def test_cached_email_pieces_never_mix_recipients():
    compiled = compile_parts(parts=PARTS)
    ada = compiled.render(channel="email", locale="en", context=CONTEXT)
    grace = compiled.render(channel="email", locale="en", context={"recipient": {**RECIPIENT, "first_name": "Grace"}})
    assert "Ada" in ada["html"] and "Grace" not in ada["html"]
    assert "Grace" in grace["html"] and "Ada" not in grace["html"] and "Grace" in grace["text"]


def test_branches_render_their_own_markdown():
    compiled = compile_parts(parts={
        "email_subject": "S",
        "email_body": "{% if recipient.first_name == 'Ada' %}**VIP**{% else %}*regular*{% endif %}",
    })
    assert "<strong" in compiled.render(channel="email", locale="en", context=CONTEXT)["html"]
    other = compiled.render(channel="email", locale="en", context={"recipient": {**RECIPIENT, "first_name": "Bo"}})
    assert "<em" in other["html"] and "<strong" not in other["html"]


# --- Save-time problems --------------------------------------------------------------------------

def test_problems_name_the_part_and_line():
    problems = template_problems(
        parts={
            "email_subject": "Hi {{ recipient.first_name }}",
            "email_body": "Hello\n\n{{ recipient.frist_name }}\n{{ coupon }}",
            "sms_text": "a\n{% if %}",
            "chat_text": "x\n\n{{ recipient.first_name|shout }}",
            "inapp_body": "{% macro m() %}{% endmacro %}",
        },
        allowed_names=BASE_NAMES,
    )
    shown = [(p.part, str(p)) for p in problems]
    assert ("email_body", "Line 3: 'recipient' has no field 'frist_name'. Did you mean 'first_name'?") in shown
    assert ("email_body", "Line 4: 'coupon' is undefined.") in shown
    assert any(part == "sms_text" and text.startswith("Line 2:") for part, text in shown)
    assert ("chat_text", "Line 3: No filter named 'shout'.") in shown
    assert ("inapp_body", "Line 1: Macros are not available in message templates.") in shown
    assert not [p for p in problems if p.part == "email_subject"]


def test_declared_variables_are_allowed():
    parts = {"sms_text": "Your code: {{ coupon }}"}
    assert template_problems(parts=parts, allowed_names=BASE_NAMES | {"coupon"}) == []
    assert [str(p) for p in template_problems(parts=parts, allowed_names=BASE_NAMES | {"coupons"})] == [
        "Line 1: 'coupon' is undefined. Did you mean 'coupons'?"
    ]


def test_trial_render_catches_what_only_running_shows():
    problems = template_trial_problems(parts={
        "sms_text": "ok\n{{ 1 / 0 }}",
        "chat_text": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "inapp_body": "{{ instance.total / 0 }}",  # needs a real instance: not tried
        "email_body": "Hi {{ recipient.first_name }}",
    })
    shown = {p.part: str(p) for p in problems}
    assert shown["sms_text"] == "Line 2: division by zero"
    assert "Rendering took longer than 200 ms" in shown["chat_text"]
    assert set(shown) == {"sms_text", "chat_text"}


# --- Context and compiled templates from the database --------------------------------------------

@pytest.mark.django_db
def test_recipient_context_is_plain_data():
    user = RecipientProfileFactory(
        user=UserFactory(username="ada", first_name="", last_name="", email="ada@example.com"),
        phone="+14155550123", locale="zh-hans", timezone="Asia/Shanghai",
    ).user
    context = recipient_context(user)
    assert set(context) == set(RECIPIENT_FIELDS)
    assert all(type(value) is str for value in context.values())
    assert (context["full_name"], context["phone_last4"], context["locale"]) == ("ada", "0123", "zh-hans")
    full = message_context(user=user, extra={
        "recipient": "shadow", "unsubscribe_url": "https://evil.example/", "coupon": "X", "instance": {"number": "7"},
    })
    assert full["recipient"] == context and full["unsubscribe_url"] == ""
    assert full["coupon"] == "X" and full["instance"] == {"number": "7"}
    assert full["campaign"] == {"id": None, "name": ""}
    assert set(BASE_NAMES) <= set(full)
    assert "/preferences/" in full["preferences_url"]


@pytest.mark.django_db
def test_instance_context_has_only_allow_listed_fields():
    order = OrderFactory(number="SO-1", total="25.00")
    fields = instance_context(order)
    assert fields["number"] == "SO-1" and fields["total"] == "25.00"
    assert "customer" in fields and not any(hasattr(v, "_meta") for v in fields.values())
    assert instance_context(UserFactory.build(username="x")) is not None


@pytest.mark.django_db
def test_compile_template_takes_one_query_and_rendering_none(django_assert_num_queries):
    template = MessageTemplateFactory(email_body="Hi {{ recipient.first_name }}")
    MessageTemplateVariantFactory(template=template, locale="zh-hans", sms_text="你好 {{ recipient.first_name }}")
    with django_assert_num_queries(1):
        compiled = compile_template(template)
    with django_assert_num_queries(0):
        for locale in ("en", "zh-hans", "fr"):
            for channel in ("email", "sms", "inapp"):
                compiled.render(channel=channel, locale=locale, context=CONTEXT)
    assert compiled.render(channel="sms", locale="zh-hans", context=CONTEXT)["text"] == "你好 Ada"
    assert compiled.render(channel="inapp", locale="zh-hans", context=CONTEXT)["title"] == "Welcome, Ada"
