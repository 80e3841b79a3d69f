from __future__ import annotations

from django.contrib import admin

from messaging.models import Entry, Thread


class ReadOnlyAdmin(admin.ModelAdmin):
    """Threads and entries are written only by messaging.actions; the admin only reads."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Thread)
class ThreadAdmin(ReadOnlyAdmin):
    list_display = ["customer", "last_seq", "last_entry_at", "staff_unread", "customer_unread"]
    search_fields = ["customer__name", "customer__email", "customer__phone"]
    list_select_related = ["customer"]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ["thread", "seq", "kind", "channel", "short_body", "created_at"]
    list_filter = ["kind", "channel", "card_kind", "urgent"]
    search_fields = ["body", "thread__customer__name", "idempotency_key"]
    list_select_related = ["thread__customer"]
    date_hierarchy = "created_at"

    @admin.display(description="Body")
    def short_body(self, entry: Entry) -> str:
        return entry.body[:80]
