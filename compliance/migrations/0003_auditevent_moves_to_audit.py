"""The audit trail moved to its own app (`audit`): the table stays as it is; only
Django's record of which app owns the model changes (no SQL runs)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_audit_append_only")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")],
            database_operations=[],
        )
    ]
