from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from notifications.queries import unmatched_count
from portal.models import Business


def portal_shell(request: HttpRequest) -> dict:
    """The business and customer for the page shell, when the view already loaded them
    (customer_required sets request.customer), so the shell costs no query. Pages without a
    customer (sign-in) get the deployment's business lazily: a query only if they show it."""
    customer = getattr(request, "customer", None)
    context = {
        "shell_customer": customer,
        "shell_business": customer.business if customer is not None else None,
        "site_business": SimpleLazyObject(lambda: Business.objects.order_by("pk").first()),
    }
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        # The staff navigation's count of texts and emails waiting for a customer.
        context["unmatched_count"] = SimpleLazyObject(_unmatched_count)
    return context


def _unmatched_count() -> int:
    return unmatched_count()
