from __future__ import annotations

from django.urls import path, register_converter

from crm_events import views
from crm_events.announcements import views as announcement_views
from crm_events.api import api
from crm_events.models import DOCUMENT_NUMBER


class DocumentNumber:
    """An invoice or estimate number (crm_events.models.DOCUMENT_NUMBER): anything else in
    its place is a 404 before any view or query runs (a NUL, a newline, "..")."""

    regex = DOCUMENT_NUMBER

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(DocumentNumber, "document_number")

urlpatterns = [
    # Documents a card opens (DESIGN.md: /invoices/<number>/, /estimates/<number>/, /schedule/)
    path("invoices/<document_number:number>/", views.invoice_page, name="crm_invoice"),
    path("invoices/<document_number:number>/pdf/", views.invoice_pdf, name="crm_invoice_pdf"),
    path("estimates/<document_number:number>/", views.estimate_page, name="crm_estimate"),
    path("estimates/<document_number:number>/pdf/", views.estimate_pdf, name="crm_estimate_pdf"),
    path(
        "estimates/<document_number:number>/<str:decision>/",
        views.estimate_decide,
        name="crm_estimate_decide",
    ),
    path(
        "schedule/<int:appointment_id>/confirm/",
        views.appointment_confirm,
        name="crm_appointment_confirm",
    ),
    path(
        "schedule/<int:appointment_id>/reschedule/",
        views.appointment_reschedule,
        name="crm_appointment_reschedule",
    ),
    path(
        "schedule/<int:appointment_id>/calendar.ics",
        views.appointment_ics,
        name="crm_appointment_ics",
    ),
    path("schedule/calendar/reset/", views.calendar_feed_reset, name="calendar_feed_reset"),
    # The customer's private feed: no session, the signed token is the key.
    path("calendar/<str:token>.ics", views.calendar_feed, name="calendar_feed"),
    path("requests/new/", views.request_new, name="request_new"),
    # A customer's photo for the CRM, by the signed link in request.created.
    path("crm/photos/<str:token>/", views.crm_photo, name="crm_photo"),
    # The same documents, staff-framed
    path("staff/invoices/<document_number:number>/", views.staff_invoice, name="crm_staff_invoice"),
    path(
        "staff/invoices/<document_number:number>/pdf/",
        views.staff_invoice_pdf,
        name="crm_staff_invoice_pdf",
    ),
    path(
        "staff/estimates/<document_number:number>/", views.staff_estimate, name="crm_staff_estimate"
    ),
    path(
        "staff/estimates/<document_number:number>/pdf/",
        views.staff_estimate_pdf,
        name="crm_staff_estimate_pdf",
    ),
    path(
        "staff/appointments/<int:appointment_id>/",
        views.staff_appointment,
        name="crm_staff_appointment",
    ),
    path("staff/contracts/<int:contract_id>/", views.staff_contract, name="crm_staff_contract"),
    # The staff chat modal's tools
    path("staff/crm/<int:thread_id>/call/", views.staff_log_call, name="crm_staff_log_call"),
    path("staff/crm/<int:thread_id>/crew/", views.staff_crew_on_the_way, name="crm_staff_crew"),
    # Announcements: one message to many customers, each in their own thread
    path("staff/announcements/", announcement_views.announcement_list, name="announcements"),
    path("staff/announcements/new/", announcement_views.announcement_new, name="announcement_new"),
    path(
        "staff/announcements/<int:announcement_id>/",
        announcement_views.announcement_detail,
        name="announcement_detail",
    ),
    path(
        "staff/announcements/<int:announcement_id>/cancel/",
        announcement_views.announcement_cancel,
        name="announcement_cancel",
    ),
    path(
        "staff/crm/<int:thread_id>/saved-replies/",
        views.staff_saved_replies,
        name="crm_staff_saved_replies",
    ),
    # The event API and its OpenAPI document (/api/openapi.json)
    path("api/", api.urls),
]
