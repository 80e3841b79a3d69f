"""Staff create and change CRM records here. The admin writes a record's own fields (that is
what it is for) but never its status: status is read-only, and moves only through the
buttons under the change form and the list's actions, which call the record's transition
function in crm_events.actions, the same the API calls. So the admin follows the same
table of moves, and the thread hears of each change once: sending an invoice twice posts
one card."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from crm_events import actions as crm
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
    SavedReply,
    WorkRequest,
)
from crm_events.outbound import admin as outbound_admin


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
                crm.check_project(customer=customer, project=project)
            except ValidationError as error:
                self.add_error("project", error)
        return data


class CustomerRecordAdmin(admin.ModelAdmin):
    # The admin's change view runs in one transaction: a record and its card commit together.
    form = CustomerRecordForm
    autocomplete_fields = ["customer"]
    list_select_related = ["customer", "project"]
    search_fields = ["customer__name", "external_id"]


def status_actions(moves: dict[str, str]) -> list:
    """The changelist's actions, one per move: each calls the kind's transition function on
    every selected record (a refused one is reported and left as it was)."""

    def make(to: str, label: str):
        @admin.action(description=f"{label} (selected)", permissions=["change"])
        def action(modeladmin, request, queryset):
            for record in queryset:
                modeladmin.apply_transition(request, record, to)

        action.__name__ = f"make_{to}"
        return action

    return [make(to, label) for to, label in moves.items()]


class StatusAdmin(CustomerRecordAdmin):
    """A record whose status only its transition function writes. `moves` names the
    statuses staff may move a record to, with the label of its button (and of its list
    action, `actions = status_actions(moves)`); `table` is the kind's table of allowed moves
    (which buttons show); `transition` calls the kind's transition function."""

    change_form_template = "admin/crm_events/change_form.html"
    moves: dict[str, str] = {}
    table: dict[str, set[str]] = {}

    def transition(self, record, to: str) -> crm.Transition:
        raise NotImplementedError

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "status"]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        status = obj.status if obj is not None else self.model._meta.get_field("status").default
        context["status_moves"] = [
            (to, label) for to, label in self.moves.items() if to in self.table.get(status, ())
        ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def apply_transition(self, request, record, to: str) -> bool:
        try:
            change = self.transition(record, to)
        except ValidationError as error:
            self.message_user(request, f"{record}: {' '.join(error.messages)}", messages.ERROR)
            return False
        word = change.record.get_status_display().lower()
        self.message_user(request, f"{change.record} is {word}.", messages.SUCCESS)
        return True

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)  # a new record, in its first status
            return
        # Only the fields the form edits: saving the whole row would write back the status
        # it was read with, over a move made meanwhile (a customer confirming, the CRM).
        obj.save(update_fields=[*self.edited_fields(form), "updated_at"])

    def edited_fields(self, form) -> list[str]:
        concrete = {f.name for f in self.model._meta.concrete_fields}
        return [name for name in form.fields if name in concrete and name != "status"]

    def _move(self, request, obj):
        # A status button saves the form's fields first (an invoice's lines, say), then moves
        # the record through its transition function; the admin stays on the record.
        self.apply_transition(request, obj, request.POST["_status"])
        return HttpResponseRedirect(
            reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
        )

    def response_add(self, request, obj, post_url_continue=None):
        if "_status" in request.POST:
            return self._move(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if "_status" in request.POST:
            return self._move(request, obj)
        return super().response_change(request, obj)


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 1
    fields = ["position", "description", "quantity", "unit_price"]


class EstimateLineInline(admin.TabularInline):
    model = EstimateLine
    extra = 1
    fields = ["position", "description", "quantity", "unit_price"]


class DocumentAdmin(StatusAdmin):
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
        # The total follows the lines, which are saved now.
        crm.recompute_total(document=form.instance)


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
    moves = {
        Invoice.Status.SENT: "Send to the customer",
        Invoice.Status.PAID: "Mark paid",
        Invoice.Status.VOID: "Void",
    }
    table = crm.INVOICE_TRANSITIONS
    actions = status_actions(moves)

    def transition(self, record, to):
        return crm.transition_invoice(invoice=record, to=to)


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
    moves = {
        Estimate.Status.SENT: "Send to the customer",
        Estimate.Status.APPROVED: "Mark approved",
        Estimate.Status.DECLINED: "Mark declined",
    }
    table = crm.ESTIMATE_TRANSITIONS
    actions = status_actions(moves)

    def transition(self, record, to):
        return crm.transition_estimate(estimate=record, to=to)


@admin.register(Contract)
class ContractAdmin(StatusAdmin):
    list_display = ["number", "title", "customer", "project", "status", "sent_at"]
    list_filter = ["status"]
    fields = ["customer", "project", "number", "title", "status", "external_id", "sent_at"]
    readonly_fields = ["sent_at"]
    search_fields = ["number", "title", "customer__name"]
    moves = {
        Contract.Status.SENT: "Send to the customer",
        Contract.Status.SIGNED: "Mark signed",
        Contract.Status.VOID: "Void",
    }
    table = crm.CONTRACT_TRANSITIONS
    actions = status_actions(moves)

    def transition(self, record, to):
        return crm.transition_contract(contract=record, to=to)


_TIMES = ("starts_at", "ends_at")


class AppointmentForm(CustomerRecordForm):
    def clean(self):
        data = super().clean()
        starts_at, ends_at = data.get("starts_at"), data.get("ends_at")
        if starts_at is None or ends_at is None:
            return data
        try:
            crm.check_times(starts_at, ends_at)
            if self.instance.pk is not None and self.moved():
                # Moving a visit is a reschedule; refused for one cancelled or completed.
                crm.check_transition(
                    record=self.instance,
                    to=Appointment.Status.RESCHEDULED,
                    table=crm.APPOINTMENT_TRANSITIONS,
                    name=f"The appointment {self.instance.title}",
                )
        except ValidationError as error:
            self.add_error(None, error)
        return data

    def moved(self) -> bool:
        return bool(set(_TIMES) & set(self.changed_data))


@admin.register(Appointment)
class AppointmentAdmin(StatusAdmin):
    form = AppointmentForm
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
    moves = {
        Appointment.Status.CONFIRMED: "Mark confirmed",
        Appointment.Status.CANCELLED: "Cancel",
        Appointment.Status.COMPLETED: "Mark completed",
    }
    table = crm.APPOINTMENT_TRANSITIONS
    actions = status_actions(moves)

    def transition(self, record, to):
        return crm.transition_appointment(appointment=record, to=to)

    def save_model(self, request, obj, form, change):
        if not change:
            # Booking is the action's (it cards the visit); the admin then shows that row.
            booked = crm.schedule_appointment(
                customer=obj.customer,
                project=obj.project,
                title=obj.title,
                starts_at=obj.starts_at,
                ends_at=obj.ends_at,
                crew_note=obj.crew_note,
                external_id=obj.external_id,
            ).record
            obj.pk = booked.pk
            obj._state.adding = False
            obj.refresh_from_db()
            return
        if not form.moved():
            super().save_model(request, obj, form, change)
            return
        edited = self.edited_fields(form)
        # Moving a visit is a reschedule, with its rules: the form saves the other fields,
        # the action the new times (and the status they imply).
        obj.save(update_fields=[n for n in [*edited, "updated_at"] if n not in _TIMES])
        try:
            moved = crm.reschedule_appointment(
                appointment=obj, starts_at=obj.starts_at, ends_at=obj.ends_at
            ).record
        except ValidationError as error:  # changed by someone else since the form was read
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return
        obj.starts_at, obj.ends_at = moved.starts_at, moved.ends_at


@admin.register(WorkRequest)
class WorkRequestAdmin(admin.ModelAdmin):
    """Requests are the customer's words: read-only here. Staff turn one into a project."""

    list_display = ["pk", "customer", "short_description", "created_at", "project_link"]
    list_select_related = ["customer", "project"]
    search_fields = ["description", "address", "customer__name"]
    readonly_fields = [
        "customer",
        "description",
        "address",
        "preferred_times",
        "photos",
        "project_link",
        "created_at",
    ]
    fields = readonly_fields
    actions = ["create_project"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="What needs doing")
    def short_description(self, obj):
        return obj.description[:80]

    @admin.display(description="Preferred times")
    def preferred_times(self, obj):
        parts = dict(WorkRequest.PartOfDay.choices)
        return "; ".join(f"{w['date']}, {parts.get(w['part'], w['part'])}" for w in obj.windows)

    @admin.display(description="Photos")
    def photos(self, obj):
        files = list(obj.entry.attachments.all())
        if not files:
            return "None"
        return format_html_join(
            " ",
            '<a href="{}">Photo {}</a>',
            ((reverse("attachment", args=[f.pk]), n) for n, f in enumerate(files, 1)),
        )

    @admin.display(description="Project")
    def project_link(self, obj):
        if obj.project is None:
            return "None yet"
        url = reverse("admin:portal_project_change", args=[obj.project.pk])
        return format_html('<a href="{}">{}</a>', url, obj.project)

    @admin.action(description="Create project from request")
    def create_project(self, request, queryset):
        for work_request in queryset.select_related("project"):
            had = work_request.project is not None
            try:
                project = crm.create_project_from_request(work_request=work_request)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                continue
            if had:
                self.message_user(
                    request, f"Request #{work_request.pk} has its project already: {project}."
                )
            else:
                self.message_user(
                    request, f"Project {project} created from request #{work_request.pk}."
                )


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


@admin.register(SavedReply)
class SavedReplyAdmin(admin.ModelAdmin):
    list_display = ["name", "body", "updated_at"]
    search_fields = ["name", "body"]


# The outbound webhooks: endpoints, deliveries (with "Resend") and each endpoint's log.
outbound_admin.register(admin.site)
