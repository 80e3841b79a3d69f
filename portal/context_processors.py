from __future__ import annotations

from django.http import HttpRequest


def portal_shell(request: HttpRequest) -> dict:
    """The business and customer for the page shell, when the view already loaded them
    (customer_required sets request.customer), so the shell costs no query."""
    customer = getattr(request, "customer", None)
    return {
        "shell_customer": customer,
        "shell_business": customer.business if customer is not None else None,
    }
