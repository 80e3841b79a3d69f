from __future__ import annotations

from django.urls import path

from messaging import consumers

websocket_urlpatterns = [
    path("ws/thread/", consumers.CustomerThreadConsumer.as_asgi()),
    path("ws/staff/threads/<int:thread_id>/", consumers.StaffThreadConsumer.as_asgi()),
    path("ws/staff/inbox/", consumers.StaffInboxConsumer.as_asgi()),
]
