"""The outbound webhooks in the admin: endpoints (URL, secrets and their rotation, event
types; enabled only through the list's actions), each endpoint's delivery log (every attempt:
the request's headers, the answer's status and first bytes, when and how long), and the
deliveries with "Resend". Registered by crm_events/admin.py.

The admin writes an endpoint's own fields through `endpoints.save_endpoint` (which checks the
URL is a public https host); `enabled` moves only through `enable_endpoint` and
`disable_endpoint`, a delivery's status only through `outbox.resend`."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from crm_events.outbound import endpoints, outbox
from crm_events.outbound.models import (
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text="A public https address of your CRM.",
    )
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "secret", "previous_secret", "event_types"]

    def clean_url(self):
        try:
            return endpoints.check_public_url(self.cleaned_data["url"])
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from None

    def _clean_secret(self, name: str) -> str:
        value = self.cleaned_data.get(name, "").strip()
        if not value:
            return ""
        try:
            return endpoints.check_secret(value)
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from None

    def clean_secret(self):
        return self._clean_secret("secret")

    def clean_previous_secret(self):
        return self._clean_secret("previous_secret")


@admin.action(description="Start a secret rotation (sign with a new and the current secret)")
def rotate_secrets(modeladmin, request, queryset):
    for endpoint in queryset.filter(from_environment=False):
        endpoints.rotate_secret(endpoint=endpoint)
    modeladmin.message_user(
        request,
        "New secrets made; events are signed with both until you clear “previous secret”.",
    )


@admin.action(description="Enable (send what waited)")
def enable(modeladmin, request, queryset):
    count = sum(endpoints.enable_endpoint(endpoint=e) for e in queryset)
    modeladmin.message_user(request, f"{count} endpoint(s) enabled.")


@admin.action(description="Disable (events wait)")
def disable(modeladmin, request, queryset):
    reason = f"Disabled by {request.user.get_username()}."
    count = sum(endpoints.disable_endpoint(endpoint=e, reason=reason) for e in queryset)
    modeladmin.message_user(request, f"{count} endpoint(s) disabled.")


class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["__str__", "description", "enabled", "disabled_reason", "failing_since", "log"]
    readonly_fields = ["enabled", "disabled_reason", "disabled_at", "failing_since", "log"]
    actions = [enable, disable, rotate_secrets]

    @admin.display(description="Delivery log")
    def log(self, endpoint: WebhookEndpoint) -> str:
        if endpoint.pk is None:
            return "—"
        url = reverse("admin:crm_events_webhookattempt_changelist")
        return format_html('<a href="{}?endpoint__id__exact={}">Attempts</a>', url, endpoint.pk)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.from_environment:
            # Set by CRM_OUTBOUND_URL and CRM_OUTBOUND_SECRET: nothing to change here.
            return [*self.readonly_fields, "url", "description", "event_types"]
        return self.readonly_fields

    def get_fields(self, request, obj=None):
        if obj is not None and obj.from_environment:
            return ["description", *self.readonly_fields]
        return [
            "url",
            "description",
            "secret",
            "previous_secret",
            "event_types",
            *self.readonly_fields,
        ]

    def save_model(self, request, obj, form, change):
        if obj.from_environment:
            return
        try:
            endpoints.save_endpoint(endpoint=obj)
        except ValidationError as error:  # a name that resolved otherwise since the form
            messages.error(request, "; ".join(error.messages))


@admin.action(description="Resend (the same event, the same webhook-id)")
def resend(modeladmin, request, queryset):
    count = outbox.resend(deliveries=queryset)
    modeladmin.message_user(
        request, f"{count} delivery(ies) queued again; ones pending or sending are on their way."
    )


class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event_type",
        "event_id",
        "customer",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["status", "endpoint", "event__type"]
    list_select_related = ["event__customer", "endpoint"]
    search_fields = ["event__event_id", "event__customer__name"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields] + ["body"]
    actions = [resend]

    @admin.display(description="Type", ordering="event__type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.display(description="webhook-id")
    def event_id(self, delivery: WebhookDelivery) -> str:
        return delivery.event.event_id

    @admin.display(description="Customer")
    def customer(self, delivery: WebhookDelivery) -> str:
        return str(delivery.event.customer)

    @admin.display(description="Body sent")
    def body(self, delivery: WebhookDelivery) -> str:
        return delivery.event.body

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class WebhookAttemptAdmin(admin.ModelAdmin):
    list_display = ["started_at", "endpoint", "event", "status_code", "error", "duration_ms"]
    list_filter = ["endpoint", "status_code"]
    list_select_related = ["endpoint", "delivery__event"]
    readonly_fields = [f.name for f in WebhookAttempt._meta.fields]

    @admin.display(description="Event")
    def event(self, attempt: WebhookAttempt) -> str:
        return str(attempt.delivery.event)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def register(site: admin.AdminSite) -> None:
    site.register(WebhookEndpoint, WebhookEndpointAdmin)
    site.register(WebhookDelivery, WebhookDeliveryAdmin)
    site.register(WebhookAttempt, WebhookAttemptAdmin)
