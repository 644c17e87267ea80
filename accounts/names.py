"""A person's name in the order it is written: one helper for every page, report and message
that shows a full name.

Chinese (and Japanese, Korean) names are written family name first with no space: 杨 + 欢 is
"杨欢", never "欢 杨", whatever language the page is in. A name in Latin letters keeps the
given-name-first order ("Huan Yang"), which is also how Chinese text writes a foreign name. The
order follows the name's script, not the reader's language, so one person's name never flips.
"""

from __future__ import annotations

import re

# Han ideographs, kana and hangul: a name written in them is written family name first.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def full_name(first: str | None, last: str | None) -> str:
    """``first`` and ``last`` joined in the name's order ("" when both are empty)."""
    first, last = (first or "").strip(), (last or "").strip()
    if not first or not last:
        return first or last
    if _CJK.search(first + last):
        return f"{last}{first}"
    return f"{first} {last}"


def person_name(user) -> str:
    """``user``'s full name in its order, or their username when they have no name."""
    return full_name(user.first_name, user.last_name) or user.get_username()
