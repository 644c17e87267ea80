from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking

        from .receipts.anymail import tracking_receive

        # No sender: anymail sends ``tracking`` with the ESP's webhook view class as sender
        # (PostmarkTrackingWebhookView, SendGridTrackingWebhookView, ...), which depends on the
        # ESP in use, so we take every sender. dispatch_uid keeps it connected once.
        tracking.connect(tracking_receive, dispatch_uid="notifications.receipts.anymail.tracking_receive")

        from . import triggers

        triggers.connect_receivers()

        # The ledger announces; the rooms above it listen and add (STYLE.md: the ground floor).
        from .ledger import outbound
        from .models import Delivery
        from .receipts import tracking as receipts
        from .signals import deliveries_batch_recorded

        outbound.register_decorator(receipts.outbound_decorate)
        outbound.register_unsubscribe_url(receipts.unsubscribe_url)

        from .campaigns.receivers import campaigns_tick, runs_finish_after_batch

        deliveries_batch_recorded.connect(
            runs_finish_after_batch, sender=Delivery, dispatch_uid="notifications.campaigns.runs_finish_after_batch"
        )

        # Periodic work for ``manage.py signalbox_scheduler``, in this order each tick.
        from .ledger.recovery import ledger_tick
        from .scheduling import register_tick

        register_tick("campaigns", campaigns_tick, order=10)
        from .campaigns.ab_tests import ab_tests_tick

        register_tick("ab_tests", ab_tests_tick, order=15)
        register_tick("ledger", ledger_tick, order=20)

        from .journeys import journeys_tick_lines

        register_tick("journeys", journeys_tick_lines, order=17)  # after campaigns (and A/B winners), before the ledger
        from .journeys.entries import on_campaign_finished
        from .signals import campaign_finished

        campaign_finished.connect(on_campaign_finished, dispatch_uid="notifications.journeys.campaign_entries")

        # Outbound webhooks listen to the ledger's, campaigns' and journeys' announcements.
        from .models import CampaignRun, JourneyEnrollment, WebhookEndpoint
        from .signals import delivery_statuses_recording, journey_goal_reached
        from .webhooks import receivers as webhooks

        # Status moves go into the outbox inside the ledger's own transaction (not after commit).
        delivery_statuses_recording.connect(webhooks.on_delivery_statuses_recording, sender=Delivery,
                                            dispatch_uid="notifications.webhooks.statuses")
        campaign_finished.connect(webhooks.on_campaign_finished, sender=CampaignRun,
                                  dispatch_uid="notifications.webhooks.campaign_finished")
        journey_goal_reached.connect(webhooks.on_journey_goal_reached, sender=JourneyEnrollment,
                                     dispatch_uid="notifications.webhooks.journey_goal")
        from django.db.models.signals import post_delete, post_save

        # However an endpoint changes (services, the shell, a migration), the routing table is forgotten.
        post_save.connect(webhooks.on_endpoint_changed, sender=WebhookEndpoint,
                          dispatch_uid="notifications.webhooks.endpoint_saved")
        post_delete.connect(webhooks.on_endpoint_changed, sender=WebhookEndpoint,
                            dispatch_uid="notifications.webhooks.endpoint_deleted")
        register_tick("webhooks", webhooks.webhooks_tick, order=25)

        from django.core import checks

        from .receipts.checks import anymail_webhook_check

        checks.register(anymail_webhook_check, checks.Tags.security)
