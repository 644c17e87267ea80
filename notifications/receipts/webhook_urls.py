from django.urls import path

from . import twilio

app_name = "webhooks"

urlpatterns = [
    path("twilio/status/", twilio.twilio_status, name="twilio_status"),
    path("twilio/inbound/", twilio.twilio_inbound, name="twilio_inbound"),
]
