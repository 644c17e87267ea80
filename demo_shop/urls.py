from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.orders, name="orders"),
    path("orders/<int:pk>/pay/", views.order_pay, name="order_pay"),
]
