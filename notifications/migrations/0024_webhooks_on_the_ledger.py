"""Outbound webhook posts move onto the ledger: each outbox message becomes a delivery with
``channel = "webhook"`` (``WebhookMessage`` is now a proxy of ``Delivery``), its attempt log
follows it, and the outbox table goes.

What each column becomes: the endpoint is ``webhook_endpoint``, the ``webhook-id`` the provider id,
the ordering key the address, the event type and body the content; a message waiting for a retry
is ``deferred`` (``status_reason`` "unknown" when its last POST went unanswered).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def outbox_to_ledger(apps, schema_editor):
    Outbox = apps.get_model("notifications", "WebhookMessage")
    Delivery = apps.get_model("notifications", "Delivery")
    Attempt = apps.get_model("notifications", "WebhookAttempt")
    last_id = 0
    while batch := list(Outbox.objects.filter(pk__gt=last_id).order_by("pk")[:500]):
        last_id = batch[-1].pk
        rows = []
        for m in batch:
            status, reason, failed_at = m.status, "", None
            if status == "pending":
                status = "planned"
            elif status in ("failed", "unknown") and m.next_attempt_at is not None:
                status, reason = "deferred", "unknown" if m.status == "unknown" else ""
            elif status == "failed":
                failed_at = m.created_at
            rows.append(Delivery(
                idempotency_key=f"webhook:{m.endpoint_id}:{m.event_key}"[:255], channel="webhook",
                webhook_endpoint_id=m.endpoint_id, address=m.ordering_key, provider_message_id=m.webhook_id,
                content={"event_type": m.event_type, "payload": m.payload}, status=status, status_reason=reason,
                attempts=m.attempts, next_attempt_at=m.next_attempt_at, lease_owner=m.lease_owner,
                lease_expires_at=m.lease_expires_at, last_error=m.last_error, created_at=m.created_at,
                sent_at=m.sent_at, failed_at=failed_at,
            ))
        Delivery.objects.bulk_create(rows, ignore_conflicts=True)
        keys = {f"webhook:{m.endpoint_id}:{m.event_key}"[:255]: m.pk for m in batch}
        for delivery_id, key in Delivery.objects.filter(idempotency_key__in=keys).values_list("pk", "idempotency_key"):
            Attempt.objects.filter(message_id=keys[key]).update(delivery_id=delivery_id)
    if schema_editor.connection.vendor == "postgresql":
        # Check the new rows' foreign keys now: PostgreSQL refuses the ALTER TABLEs that follow
        # while deferred checks are pending on the tables they touch.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0023_lift_wechat_subscribe_refusals'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='delivery',
            name='webhook_endpoint',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='notifications.webhookendpoint', verbose_name='webhook endpoint'),
        ),
        migrations.AddField(
            model_name='webhookattempt',
            name='delivery',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='webhook_attempts', to='notifications.delivery', verbose_name='message'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('webhook_endpoint__isnull', False)), fields=['webhook_endpoint', 'next_attempt_at'], name='delivery_webhook_due_idx'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('webhook_endpoint__isnull', False)), fields=['webhook_endpoint', 'address', 'id'], name='delivery_webhook_stream_idx'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('webhook_endpoint__isnull', False)), fields=['status', 'next_attempt_at'], name='delivery_webhook_status_idx'),
        ),
        migrations.RunPython(outbox_to_ledger, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='webhookattempt',
            name='message',
        ),
        migrations.RunPython(
            lambda apps, schema_editor: apps.get_model("notifications", "WebhookAttempt").objects.filter(
                delivery__isnull=True).delete(),
            migrations.RunPython.noop,
        ),
        migrations.AlterField(
            model_name='webhookattempt',
            name='delivery',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='webhook_attempts', to='notifications.delivery', verbose_name='message'),
        ),
        migrations.DeleteModel(
            name='WebhookMessage',
        ),
        migrations.CreateModel(
            name='WebhookMessage',
            fields=[
            ],
            options={
                'verbose_name': 'webhook message',
                'verbose_name_plural': 'webhook messages',
                'ordering': ['-pk'],
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('notifications.delivery',),
        ),
    ]
