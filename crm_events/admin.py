"""Staff create and change CRM records here. The admin writes the record's own fields (that is
what it is for) and then calls the same actions as the API, so the thread hears of each
change once: saving an invoice as sent twice posts one card."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from crm_events import actions
from crm_events.models import (
    ApiEvent,
    Appointment,
    Call,
    Contract,
    CrmSettings,
    Estimate,
    EstimateLine,
    Invoice,
    InvoiceLine,
    ProjectFollowUp,
)


@admin.register(CrmSettings)
class CrmSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "business",
        "currency",
        "locale",
        "reminders_enabled",
        "confirm_by_reply_enabled",
        "follow_ups_enabled",
        "follow_up_days",
    ]
    fieldsets = [
        (None, {"fields": ["business", "currency", "locale"]}),
        (
            "Appointment reminders and CONFIRM",
            {"fields": ["reminders_enabled", "reminder_time", "confirm_by_reply_enabled"]},
        ),
        (
            "Follow-up after a completed project",
            {"fields": ["follow_ups_enabled", "follow_up_days", "follow_up_message"]},
        ),
    ]


class CustomerRecordForm(forms.ModelForm):
    def clean(self):
        data = super().clean()
        customer, project = data.get("customer"), data.get("project")
        if customer is not None:
            try:
                actions.check_project(customer=customer, project=project)
            except ValidationError as error:
                self.add_error("project", error)
        return data


class CustomerRecordAdmin(admin.ModelAdmin):
    # The admin's change view runs in one transaction: a record and its card commit together.
    form = CustomerRecordForm
    autocomplete_fields = ["customer"]
    list_select_related = ["customer", "project"]
    search_fields = ["customer__name", "external_id"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 1
    fields = ["position", "description", "quantity", "unit_price"]


class EstimateLineInline(admin.TabularInline):
    model = EstimateLine
    extra = 1
    fields = ["position", "description", "quantity", "unit_price"]


class DocumentAdmin(CustomerRecordAdmin):
    readonly_fields = ["total", "issued_at", "staff_page"]
    search_fields = ["number", "customer__name", "external_id"]

    @admin.display(description="Document")
    def staff_page(self, obj):
        if obj.pk is None:
            return "-"
        name = "crm_staff_invoice" if isinstance(obj, Invoice) else "crm_staff_estimate"
        return format_html('<a href="{}">Open</a>', reverse(name, args=[obj.number]))

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Lines are saved now: total them, then tell the thread about the current status.
        document = form.instance
        actions.recompute_total(document=document)
        self.announce(document)


@admin.register(Invoice)
class InvoiceAdmin(DocumentAdmin):
    list_display = ["number", "customer", "project", "total", "currency", "status", "due_on"]
    list_filter = ["status"]
    inlines = [InvoiceLineInline]
    fields = [
        "customer",
        "project",
        "number",
        "status",
        "currency",
        "due_on",
        "external_id",
        "total",
        "issued_at",
        "staff_page",
    ]

    def announce(self, document):
        actions.invoice_changed(invoice=document)


@admin.register(Estimate)
class EstimateAdmin(DocumentAdmin):
    list_display = ["number", "customer", "project", "total", "currency", "status", "valid_until"]
    list_filter = ["status"]
    inlines = [EstimateLineInline]
    fields = [
        "customer",
        "project",
        "number",
        "status",
        "currency",
        "valid_until",
        "external_id",
        "total",
        "issued_at",
        "staff_page",
    ]

    def announce(self, document):
        actions.estimate_changed(estimate=document)


@admin.register(Contract)
class ContractAdmin(CustomerRecordAdmin):
    list_display = ["number", "title", "customer", "project", "status", "sent_at"]
    list_filter = ["status"]
    fields = ["customer", "project", "number", "title", "status", "external_id"]
    search_fields = ["number", "title", "customer__name"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        actions.contract_changed(contract=obj)


@admin.register(Appointment)
class AppointmentAdmin(CustomerRecordAdmin):
    list_display = ["title", "customer", "project", "starts_at", "ends_at", "status"]
    list_filter = ["status"]
    date_hierarchy = "starts_at"
    fields = [
        "customer",
        "project",
        "title",
        "starts_at",
        "ends_at",
        "status",
        "crew_note",
        "external_id",
        "confirmed_at",
    ]
    readonly_fields = ["confirmed_at"]

    def save_model(self, request, obj, form, change):
        moved = change and {"starts_at", "ends_at"} & set(form.changed_data)
        if moved and obj.status in (Appointment.Status.SCHEDULED, Appointment.Status.CONFIRMED):
            # A visit moved in the admin is a reschedule: it needs confirming again.
            obj.status = Appointment.Status.RESCHEDULED
            obj.confirmed_at = None
        if obj.status == Appointment.Status.CONFIRMED and obj.confirmed_at is None:
            obj.confirmed_at = timezone.now()
        super().save_model(request, obj, form, change)
        actions.appointment_changed(appointment=obj)


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ["customer", "started_at", "duration_seconds", "direction", "author"]
    list_select_related = ["customer", "author"]
    search_fields = ["customer__name", "external_id"]
    # Calls are logged from the chat modal or the API (they write the thread's marker).
    readonly_fields = [f.name for f in Call._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ApiEvent)
class ApiEventAdmin(admin.ModelAdmin):
    list_display = ["webhook_id", "type", "status_code", "received_at"]
    search_fields = ["webhook_id", "type"]
    readonly_fields = [f.name for f in ApiEvent._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ProjectFollowUp)
class ProjectFollowUpAdmin(admin.ModelAdmin):
    list_display = ["project", "completed_seen_at", "sent_at"]
    list_select_related = ["project"]
