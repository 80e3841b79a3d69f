"""The admin's tabular inlines name each cell's input after its column: Django labels the
column (a <th>) but not the inputs under it, so a screen reader hears an unnamed box (axe:
label, select-name)."""

from __future__ import annotations

from django import template
from django.forms import BoundField
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def labelled_field(field: BoundField, column: str, row: str) -> SafeString:
    """The field as `{{ field }}` renders it, with aria-label "<column>, <row>"."""
    if field.is_hidden:
        return field.as_widget()
    html = field.as_widget(attrs={"aria-label": f"{column}, {row}"})
    if field.field.show_hidden_initial:
        html += field.as_hidden(only_initial=True)
    return html


@register.simple_tag
def row_name(form, number: int) -> str:
    """ "row 2"; the hidden row that "Add another" copies (its prefix ends in __prefix__) is
    "new row" in every copy."""
    return "new row" if form.prefix.endswith("__prefix__") else f"row {number}"
