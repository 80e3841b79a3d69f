from __future__ import annotations

from django.contrib import admin

from notifications.models import Delivery, NotificationPreferences, PushSubscription


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Read-only: deliveries change only through notifications.outbound (claims, provider
    callbacks), whose conditional updates an admin edit would bypass."""

    list_display = [
        "entry",
        "channel",
        "audience",
        "recipient",
        "status",
        "attempts",
        "send_after",
        "last_error",
    ]
    list_filter = ["status", "channel", "audience"]
    search_fields = ["recipient", "provider_id", "entry__thread__customer__name"]
    list_select_related = ["entry"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(NotificationPreferences)
class NotificationPreferencesAdmin(admin.ModelAdmin):
    list_display = [
        "customer",
        "sms_enabled",
        "email_enabled",
        "push_enabled",
        "quiet_hours_enabled",
        "quiet_start",
        "quiet_end",
        "time_zone",
        "sms_opted_out_at",
    ]
    list_select_related = ["customer"]
    search_fields = ["customer__name", "customer__email"]
    raw_id_fields = ["customer"]


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["customer", "user_agent", "created_at", "last_success_at"]
    list_select_related = ["customer"]
    search_fields = ["customer__name"]
    readonly_fields = ["endpoint", "p256dh", "auth", "user_agent", "created_at", "last_success_at"]
    raw_id_fields = ["customer"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False
