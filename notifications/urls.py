from __future__ import annotations

from django.urls import path

from notifications import views
from notifications.inbound import views as inbound_views
from notifications.inbound import webhooks

urlpatterns = [
    path("settings/notifications/", views.notification_settings, name="notification_settings"),
    path("settings/notifications/push/subscribe/", views.push_subscribe, name="push_subscribe"),
    path(
        "settings/notifications/push/unsubscribe/",
        views.push_unsubscribe,
        name="push_unsubscribe",
    ),
    path("settings/notifications/push/test/", views.push_test, name="push_test"),
    # RFC 8058 one-click unsubscribe, from the List-Unsubscribe header of customers' emails.
    path("email/unsubscribe/<str:token>/", views.email_unsubscribe, name="email_unsubscribe"),
    path("webhooks/twilio/sms/", inbound_views.twilio_sms, name="twilio_sms"),
    path("staff/settings/", views.staff_settings, name="staff_settings"),
    path("staff/settings/push/subscribe/", views.staff_push_subscribe, name="staff_push_subscribe"),
    path(
        "staff/settings/push/unsubscribe/",
        views.staff_push_unsubscribe,
        name="staff_push_unsubscribe",
    ),
    path("staff/unmatched/", inbound_views.unmatched, name="unmatched"),
    path(
        "staff/unmatched/<int:inbound_id>/assign/",
        inbound_views.unmatched_assign,
        name="unmatched_assign",
    ),
    path(
        "staff/unmatched/<int:inbound_id>/new-customer/",
        inbound_views.unmatched_new_customer,
        name="unmatched_new_customer",
    ),
    path(
        "staff/unmatched/<int:inbound_id>/dismiss/",
        inbound_views.unmatched_dismiss,
        name="unmatched_dismiss",
    ),
    path(
        "staff/unmatched/<int:inbound_id>/files/<int:number>/",
        inbound_views.unmatched_file,
        name="unmatched_file",
    ),
    path("webhooks/twilio/status/", views.twilio_status, name="twilio_status"),
    # The configured ESP's tracking (and inbound) webhooks only; see notifications.inbound.webhooks.
    path(
        "anymail/<slug:esp>/<str:kind>/",
        webhooks.esp_webhook,
        name="esp_webhook",
    ),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("offline/", views.offline, name="offline"),
    path("favicon.ico", views.favicon, name="favicon"),
]
