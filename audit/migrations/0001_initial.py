"""The audit trail's model, taken over from compliance (its table is unchanged:
compliance/0001 created it and compliance/0002 made it append-only)."""

import django.core.serializers.json
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("compliance", "0003_auditevent_moves_to_audit"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("occurred_at", models.DateTimeField(db_index=True)),
                        (
                            "actor_name",
                            models.CharField(
                                help_text="Username, or 'system' for automated steps",
                                max_length=150,
                            ),
                        ),
                        ("kind", models.CharField(db_index=True, max_length=64)),
                        ("object_type", models.CharField(db_index=True, max_length=64)),
                        ("object_id", models.CharField(db_index=True, max_length=64)),
                        ("object_repr", models.CharField(max_length=200)),
                        (
                            "before",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                encoder=django.core.serializers.json.DjangoJSONEncoder,
                            ),
                        ),
                        (
                            "after",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                encoder=django.core.serializers.json.DjangoJSONEncoder,
                            ),
                        ),
                        ("reason", models.TextField(blank=True)),
                        (
                            "origin",
                            models.CharField(
                                blank=True, help_text="Channel and address", max_length=100
                            ),
                        ),
                        ("previous_hash", models.CharField(max_length=64)),
                        ("hash", models.CharField(max_length=64, unique=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "compliance_auditevent",
                        "ordering": ["-pk"],
                        "indexes": [
                            models.Index(
                                fields=["object_type", "object_id"],
                                name="compliance__object__53cfe7_idx",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        )
    ]
