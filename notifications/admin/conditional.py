"""Unfold's ``conditional_fields`` on read-only change pages.

Unfold shows and hides fields with Alpine expressions over the form's inputs
(``conditional_fields = {"rules": "kind == 'rules'"}``). On a page the user may only view, those
inputs are not rendered, so every expression throws "ReferenceError: kind is not defined" in the
browser. ``ConditionsOnlyWhenEditable`` drops the conditions from such pages.
"""

from __future__ import annotations


class _AdminWithoutConditions:
    """The model admin as a read-only form sees it: no conditional fields."""

    conditional_fields: dict = {}

    def __init__(self, model_admin) -> None:
        self._model_admin = model_admin

    def __getattr__(self, name):
        return getattr(self._model_admin, name)


class ConditionsOnlyWhenEditable:
    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if "adminform" in context and not (self.has_add_permission(request) if add
                                           else self.has_change_permission(request, obj)):
            context["adminform"].model_admin = _AdminWithoutConditions(self)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)
