"""Category pickers on staff pages list names in the reader's language, in the order of those names."""

from __future__ import annotations

import pytest
from django.utils import translation

from dashboard.analytics.selectors import filter_choices
from dashboard.reports.forms import ExportForm, PeriodReportForm
from tests.factories import CategoryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_categories():
    # U+4E59 乙 sorts before U+7532 甲: in Chinese the two come the other way round.
    return (
        CategoryFactory(key="alpha", name="Alpha news", name_zh_hans="甲 新闻", kind="marketing"),
        CategoryFactory(key="beta", name="Beta offers", name_zh_hans="乙 优惠", kind="marketing"),
    )


def _ours(names: list[str]) -> list[str]:
    return [n for n in names if n in {"Alpha news", "Beta offers", "甲 新闻", "乙 优惠"}]


def test_analytics_filter_lists_categories_by_their_shown_name(two_categories):
    assert _ours([name for _pk, name in filter_choices()[1]]) == ["Alpha news", "Beta offers"]
    with translation.override("zh-hans"):
        assert _ours([name for _pk, name in filter_choices()[1]]) == ["乙 优惠", "甲 新闻"]


@pytest.mark.parametrize("form_class", [ExportForm, PeriodReportForm])
def test_report_forms_list_categories_by_their_shown_name(two_categories, form_class):
    def labels() -> list[str]:
        return _ours([str(label) for _value, label in form_class().fields["category"].choices])

    assert labels() == ["Alpha news", "Beta offers"]
    with translation.override("zh-hans"):
        assert labels() == ["乙 优惠", "甲 新闻"]
