"""The sealed chain: events are appended unchained and sealed after commit.

The in-row hashes of the old chain go (they hashed Python values, which PostgreSQL
does not always store as given); the sealer's first round seals every event
recorded before this migration afresh, from what the database stores. On
PostgreSQL, triggers stamp each event with its transaction's id and refuse
UPDATE, DELETE and TRUNCATE on the events, their seals and the checkpoints.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TABLES = ("compliance_auditevent", "audit_auditseal", "audit_auditcheckpoint")

OLD_TRIGGER = """
DROP TRIGGER IF EXISTS compliance_auditevent_append_only ON compliance_auditevent;
DROP FUNCTION IF EXISTS compliance_auditevent_append_only();
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % refused on %', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

-- Which transaction appended the event: the sealer's horizon is a transaction id.
-- Set here, not by the application, so that no writer can place an event below it.
CREATE OR REPLACE FUNCTION audit_event_stamp_xact() RETURNS trigger AS $$
BEGIN
    NEW.xact := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_stamp_xact BEFORE INSERT ON compliance_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_stamp_xact();
"""

PER_TABLE = """
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"""

DROP_PER_TABLE = """
DROP TRIGGER IF EXISTS audit_append_only ON {table};
DROP TRIGGER IF EXISTS audit_no_truncate ON {table};
"""

DROP_FUNCTIONS = """
DROP TRIGGER IF EXISTS audit_event_stamp_xact ON compliance_auditevent;
DROP FUNCTION IF EXISTS audit_event_stamp_xact();
DROP FUNCTION IF EXISTS audit_append_only();
"""

OLD_TRIGGER_BACK = """
CREATE OR REPLACE FUNCTION compliance_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % refused on compliance_auditevent', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER compliance_auditevent_append_only
    BEFORE UPDATE OR DELETE ON compliance_auditevent
    FOR EACH ROW EXECUTE FUNCTION compliance_auditevent_append_only();
"""


def _on_postgresql(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


def _append_only_sql() -> str:
    return APPEND_ONLY + "".join(PER_TABLE.format(table=table) for table in TABLES)


def _drop_append_only_sql() -> str:
    return "".join(DROP_PER_TABLE.format(table=table) for table in TABLES) + DROP_FUNCTIONS


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(OLD_TRIGGER), _on_postgresql(OLD_TRIGGER_BACK)),
        # No foreign key checks (and row locks) on users from every audited write.
        migrations.AlterField(
            model_name="auditevent",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "position",
                    models.BigIntegerField(
                        help_text="The last sealed position this checkpoint covers"
                    ),
                ),
                (
                    "head_hash",
                    models.CharField(
                        help_text="The hash of the seal at that position", max_length=64
                    ),
                ),
                ("signed_at", models.DateTimeField()),
                (
                    "key_id",
                    models.CharField(
                        help_text="Which key signed it (a digest, not the key)", max_length=16
                    ),
                ),
                ("signature", models.CharField(max_length=64)),
            ],
            options={
                "ordering": ["-pk"],
                "get_latest_by": "pk",
            },
        ),
        migrations.RemoveField(
            model_name="auditevent",
            name="hash",
        ),
        migrations.RemoveField(
            model_name="auditevent",
            name="previous_hash",
        ),
        migrations.AddField(
            model_name="auditevent",
            name="xact",
            field=models.BigIntegerField(
                blank=True,
                editable=False,
                help_text="PostgreSQL: the transaction that appended the event (set by a trigger), which tells the sealer when no event older than it can still commit",
                null=True,
                default=0,
            ),
            # Events recorded before: 0, inside the sealer's first window.
            preserve_default=False,
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["xact", "id"], name="audit_event_xact_idx"),
        ),
        migrations.CreateModel(
            name="AuditSeal",
            fields=[
                ("position", models.BigIntegerField(primary_key=True, serialize=False)),
                ("previous_hash", models.CharField(max_length=64)),
                ("hash", models.CharField(max_length=64)),
                ("sealed_at", models.DateTimeField()),
                (
                    "horizon",
                    models.BigIntegerField(
                        help_text="Every event appended below this mark (a PostgreSQL transaction id, or an event id on SQLite) was sealed by the round that wrote this seal or before"
                    ),
                ),
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="seal",
                        to="audit.auditevent",
                    ),
                ),
            ],
            options={
                "ordering": ["position"],
            },
        ),
        migrations.RunPython(
            _on_postgresql(_append_only_sql()), _on_postgresql(_drop_append_only_sql())
        ),
    ]
