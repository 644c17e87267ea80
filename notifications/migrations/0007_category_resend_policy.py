from django.db import migrations, models


def policies_by_kind(apps, schema_editor):
    """Existing categories get what their kind suggests: transactional ones at least once."""
    Category = apps.get_model("notifications", "Category")
    Category.objects.filter(kind="transactional").update(resend_policy="at_least_once")


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0006_trust"),
    ]

    operations = [
        migrations.AddField(
            model_name="category",
            name="resend_policy",
            field=models.CharField(
                choices=[
                    ("at_most_once", "At most once: never send twice"),
                    ("at_least_once", "At least once: re-send with the same identity"),
                ],
                default="at_most_once",
                help_text=(
                    "When a worker stops while a message is with the provider, nobody knows whether it arrived. "
                    "At most once records it as 'Outcome unknown' and never sends it again. At least once sends it "
                    "again, as the same message, on channels that can (email keeps its Message-ID); a recipient may "
                    "then get it twice. Marketing usually wants at most once, transactional at least once."
                ),
                max_length=16,
                verbose_name="after a crash",
            ),
        ),
        migrations.RunPython(policies_by_kind, migrations.RunPython.noop),
    ]
