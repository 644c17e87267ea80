"""Our copy of Unfold's page skeleton differs from the installed one only by the dropped Chart.js."""

from __future__ import annotations

from pathlib import Path

import unfold
from django.conf import settings
from django.test import Client

from tests.factories import staff_in

OURS = Path(settings.BASE_DIR) / "templates" / "unfold" / "layouts" / "skeleton.html"
THEIRS = Path(unfold.__file__).parent / "templates" / "unfold" / "layouts" / "skeleton.html"
CHART_JS = "unfold/js/chart/chart.js"


def test_the_copy_is_unfolds_skeleton_without_chart_js():
    ours = OURS.read_text()
    assert ours.startswith("{% comment %}")
    ours = ours.split("{% endcomment %}", 1)[1]
    theirs = [line for line in THEIRS.read_text().splitlines(keepends=True) if CHART_JS not in line]
    assert len(theirs) == len(THEIRS.read_text().splitlines()) - 1, "Unfold no longer loads Chart.js this way"
    assert ours == "".join(theirs), "Unfold's skeleton changed: copy it again without the Chart.js line"


def test_admin_pages_do_not_load_chart_js(db):
    client = Client()
    client.force_login(staff_in("Marketers", "marta"))
    for url in ("/admin/", "/admin/analytics/"):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "unfold/js/alpine/alpine.js" in html, url  # the page is Unfold's skeleton
        assert CHART_JS not in html, url
