from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import models

from messaging.actions import ensure_thread
from portal.models import Business, Customer, CustomerTag, Project


class _ServedLogo:
    """The current logo as the admin's file widget shows it: its name, linked to the logo
    view (MEDIA_URL is never served, so the storage's own URL would be a 404)."""

    def __init__(self, logo):
        self.name = logo.name
        self.url = logo.instance.logo_url

    def __str__(self) -> str:
        return self.name


class LogoInput(forms.ClearableFileInput):
    def format_value(self, value):
        if self.is_initial(value):
            return _ServedLogo(value)
        return super().format_value(value)


@admin.register(Business)
class BusinessAdmin(admin.ModelAdmin):
    formfield_overrides = {models.FileField: {"widget": LogoInput}}
    list_display = ["name", "phone", "sms_number", "email", "time_zone"]
    search_fields = ["name", "email", "phone"]


class ProjectInline(admin.TabularInline):
    model = Project
    extra = 0
    fields = ["code", "title", "status", "plan_type"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "phone", "business", "time_zone"]
    list_filter = ["business", "time_zone", "tags"]
    search_fields = ["name", "email", "phone"]
    list_select_related = ["business"]
    raw_id_fields = ["user"]
    # One writer: the assignee changes only through portal.actions.assign_customer.
    readonly_fields = ["assigned_to"]
    inlines = [ProjectInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Every customer has a thread from the start, so the staff list can open a chat.
        ensure_thread(customer=obj)


@admin.register(CustomerTag)
class CustomerTagAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["code", "title", "customer", "status", "plan_type"]
    list_filter = ["status", "plan_type"]
    search_fields = ["code", "title", "customer__name"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
