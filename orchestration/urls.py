from django.urls import path

from . import views

app_name = "runs"

urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_create, name="create"),
    path("<int:pk>/", views.run_detail, name="detail"),
    path("<int:pk>/approve/", views.run_approve, name="approve"),
    path("<int:pk>/release/", views.run_release, name="release"),
    path("<int:pk>/cancel/", views.run_cancel, name="cancel"),
    path("<int:pk>/orders/<int:order_id>/drop/", views.run_order_drop, name="order-drop"),
]
