"""``{{ user|person_name }}``: a full name in its order (``accounts.names``)."""

from django import template

from accounts.names import person_name as _person_name

register = template.Library()


@register.filter
def person_name(user) -> str:
    return _person_name(user) if user is not None and getattr(user, "pk", None) else ""
