from django.urls import path

from . import sms_reports, twilio, wechat

app_name = "webhooks"

urlpatterns = [
    path("twilio/status/", twilio.twilio_status, name="twilio_status"),
    path("twilio/inbound/", twilio.twilio_inbound, name="twilio_inbound"),
    # Unsigned pushes: the secret token in the path is the authorisation (sms_reports).
    path("aliyun/sms-report/<str:token>/", sms_reports.aliyun_sms_report, name="aliyun_sms_report"),
    path("tencent/sms-status/<str:token>/", sms_reports.tencent_sms_status, name="tencent_sms_status"),
    path("wechat/events/", wechat.wechat_events, name="wechat_events"),
]
