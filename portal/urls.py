from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from messaging import views as messaging_views
from portal import account_views, health, insights_views, security, views

urlpatterns = [
    path("", views.home, name="home"),
    # Operations: load balancers' health check; where browsers report CSP violations.
    path("health/", health.health, name="health"),
    path("csp-report/", security.csp_report, name="csp_report"),
    path("logo/<int:business_id>/", views.business_logo, name="business_logo"),
    path("login/", views.login_page, name="login"),
    path("login/code/", views.login_code, name="login_code"),
    path("login/magic/", views.magic_link, name="magic_link"),
    path("logout/", views.logout_view, name="logout"),
    # The link in a customer's notification: signs them in once, opens the entry.
    path("open/<str:token>/", views.notification_link, name="notification_link"),
    path("staff/login/", views.StaffLoginView.as_view(), name="staff_login"),
    # Customer pages
    path("account/", account_views.account_page, name="account"),
    path("account/name/", account_views.change_name, name="account_name"),
    path("account/contact/", account_views.change_contact, name="account_contact"),
    path("account/confirm/", account_views.confirm_change, name="account_confirm"),
    path("account/devices/sign-out/", account_views.sign_out_device, name="account_device_out"),
    path(
        "account/sign-out-everywhere/",
        account_views.sign_out_everywhere,
        name="account_sign_out_everywhere",
    ),
    path("project/", views.project_page, name="project"),
    path("invoices/", views.invoices_page, name="invoices"),
    path("schedule/", views.schedule_page, name="schedule"),
    # Notification settings, push devices, provider webhooks, the web app manifest and the
    # service worker (which must be served from the site root).
    path("", include("notifications.urls")),
    path("", include("crm_events.urls")),
    path("messages/", messaging_views.messages_page, name="messages"),
    path("messages/entries/", messaging_views.customer_entries, name="customer_entries"),
    path("messages/send/", messaging_views.customer_send, name="customer_send"),
    path("messages/search/", messaging_views.customer_search, name="customer_search"),
    # The whole thread as a record (messaging/transcripts.py, docs/transcripts.md).
    *(
        path(
            f"messages/transcript.{kind}",
            messaging_views.customer_transcript,
            {"kind": kind},
            name=f"customer_transcript_{kind}",
        )
        for kind in ("pdf", "json")
    ),
    # Files on entries, for whoever may see the entry; and by a signed link for Twilio.
    path("attachments/<int:attachment_id>/", messaging_views.attachment, name="attachment"),
    path(
        "attachments/<int:attachment_id>/thumbnail/",
        messaging_views.attachment_thumbnail,
        name="attachment_thumbnail",
    ),
    path(
        "attachments/shared/<str:token>/",
        messaging_views.attachment_shared,
        name="attachment_shared",
    ),
    # Staff pages
    path("staff/projects/", views.staff_projects, name="staff_projects"),
    path("staff/insights/", insights_views.staff_insights, name="staff_insights"),
    path("staff/customers/<int:customer_id>/assignee/", views.staff_assign, name="staff_assign"),
    path("staff/chat/<int:thread_id>/", messaging_views.staff_chat, name="staff_chat"),
    path(
        "staff/chat/<int:thread_id>/entries/",
        messaging_views.staff_entries,
        name="staff_entries",
    ),
    path("staff/chat/<int:thread_id>/send/", messaging_views.staff_send, name="staff_send"),
    path(
        "staff/chat/<int:thread_id>/search/",
        messaging_views.staff_thread_search,
        name="staff_thread_search",
    ),
    *(
        path(
            f"staff/chat/<int:thread_id>/transcript.{kind}",
            messaging_views.staff_transcript,
            {"kind": kind},
            name=f"staff_transcript_{kind}",
        )
        for kind in ("pdf", "json")
    ),
    # The admin's own password form would be a second, unthrottled way to guess a staff
    # password: staff sign in at /staff/login/ (its lockout), then come back (?next=).
    path(
        "admin/login/",
        RedirectView.as_view(pattern_name="staff_login", query_string=True),
        name="admin_login",
    ),
    path("admin/", admin.site.urls),
]
