"""The staff list's rows, from the per-row fragment cache (portal/rendering.py)."""

from __future__ import annotations

from django import template

from portal.rendering import render_project_rows

register = template.Library()


@register.simple_tag(takes_context=True)
def project_rows(context, rows):
    """{% for row in rows %}{% partial row %}{% endfor %}, each row rendered once per state.
    The page's rows only: the inbox socket's out-of-band rows come from StaffInboxConsumer,
    which calls render_project_rows itself."""
    return render_project_rows(
        rows,
        staff_members=context.get("staff_members", ()),
        csrf_token=context.get("csrf_token"),
    )
