"""FixInbox gets a status with a transition map (received → applied / not
applied), set from what applied_at and error said before."""

from django.db import migrations, models


def from_applied_at(apps, schema_editor):
    FixInbox = apps.get_model("trading", "FixInbox")
    FixInbox.objects.filter(applied_at__isnull=False).update(status="applied")
    FixInbox.objects.filter(applied_at__isnull=True).exclude(error="").update(status="not_applied")


class Migration(migrations.Migration):
    dependencies = [("trading", "0004_fix_session_port_max")]

    operations = [
        migrations.AddField(
            model_name="fixinbox",
            name="status",
            field=models.CharField(
                choices=[
                    ("received", "Received"),
                    ("applied", "Applied"),
                    ("not_applied", "Not applied"),
                ],
                db_index=True,
                default="received",
                max_length=12,
            ),
        ),
        migrations.RunPython(from_applied_at, migrations.RunPython.noop),
    ]
