"""The push channel's URLs (included by config.urls under /push/)."""

from django.urls import path

from . import push_views

app_name = "push"

urlpatterns = [
    path("stream/", push_views.stream, name="stream"),
    path("poll/", push_views.poll, name="poll"),
]
