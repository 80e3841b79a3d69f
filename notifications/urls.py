from __future__ import annotations

from anymail.urls import urlpatterns as anymail_urlpatterns
from django.urls import include, path

from notifications import views

# Only anymail's *tracking* webhooks (delivery status of the emails we send). Its inbound
# webhooks belong to the inbound-email work: mounted now, they would accept mail and drop it.
anymail_tracking = [
    pattern
    for pattern in anymail_urlpatterns
    if pattern.name and pattern.name.endswith("_tracking_webhook")
]

urlpatterns = [
    path("settings/notifications/", views.notification_settings, name="notification_settings"),
    path("settings/notifications/push/subscribe/", views.push_subscribe, name="push_subscribe"),
    path(
        "settings/notifications/push/unsubscribe/",
        views.push_unsubscribe,
        name="push_unsubscribe",
    ),
    path("settings/notifications/push/test/", views.push_test, name="push_test"),
    path("webhooks/twilio/status/", views.twilio_status, name="twilio_status"),
    path("anymail/", include((anymail_tracking, "anymail"))),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("offline/", views.offline, name="offline"),
]
