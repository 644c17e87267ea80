"""A refused WeChat subscribe message (43101) no longer suppresses the openid on its alias: the
suppressions earlier versions made for it are lifted, each audited as the system's
``suppression.lift``. They stopped every WeChat message to the person, order receipts included,
for a consent that is per subscribe template (and, for one-time subscriptions, per message)."""

from django.db import migrations

NOTE_PREFIX = "WeChat 43101"
VIA = "a refused WeChat subscribe message no longer suppresses the openid (migration 0023)"


def lift(apps, schema_editor):
    Suppression = apps.get_model("notifications", "Suppression")
    AuditEntry = apps.get_model("notifications", "AuditEntry")
    ContentType = apps.get_model("contenttypes", "ContentType")
    refusals = list(Suppression.objects.filter(note__startswith=NOTE_PREFIX))
    if not refusals:
        return
    content_type, _ = ContentType.objects.get_or_create(app_label="notifications", model="suppression")
    AuditEntry.objects.bulk_create(
        AuditEntry(
            actor=None, actor_repr="system", action="suppression.lift", target_type=content_type,
            target_id=str(s.pk), target_repr=f"{s.channel} {s.address} ({s.reason})"[:200],
            changes={"channel": s.channel, "address": s.address, "reason": s.reason, "user_id": s.user_id, "via": VIA},
        )
        for s in refusals
    )
    Suppression.objects.filter(pk__in=[s.pk for s in refusals]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("notifications", "0022_webhookmessage_open_idx"),
    ]

    operations = [migrations.RunPython(lift, migrations.RunPython.noop)]
