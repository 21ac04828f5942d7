"""The rule book's stamp: one row that a trigger rewrites with a new random value in
the transaction of every change to the rules, their chosen accounts, the restricted
lists and their entries (PostgreSQL and SQLite; on another database no row is made,
so nothing is cached). See `compliance.models.RuleBookStamp` and decision 37."""

from django.db import migrations, models

TABLES = (
    "compliance_rule",
    "compliance_rule_accounts",
    "compliance_restrictedlist",
    "compliance_restrictedentry",
)

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION compliance_rule_book_stamp() RETURNS trigger AS $$
BEGIN
    INSERT INTO compliance_rulebookstamp (id, stamp) VALUES (1, gen_random_uuid()::text)
        ON CONFLICT (id) DO UPDATE SET stamp = EXCLUDED.stamp;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""

PG_TRIGGER = """
CREATE TRIGGER compliance_rule_book_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON {table} FOR EACH STATEMENT EXECUTE FUNCTION compliance_rule_book_stamp();
"""

PG_DROP = "DROP TRIGGER IF EXISTS compliance_rule_book_stamp ON {table};"

SQLITE_TRIGGER = """
CREATE TRIGGER compliance_rule_book_stamp_{event}_{table} AFTER {when} ON {table}
BEGIN
    INSERT INTO compliance_rulebookstamp (id, stamp) VALUES (1, lower(hex(randomblob(16))))
        ON CONFLICT (id) DO UPDATE SET stamp = excluded.stamp;
END;
"""

SQLITE_EVENTS = ("insert", "update", "delete")


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FUNCTION, params=None)
        for table in TABLES:
            schema_editor.execute(PG_TRIGGER.format(table=table), params=None)
    elif vendor == "sqlite":
        for table in TABLES:
            for event in SQLITE_EVENTS:
                sql = SQLITE_TRIGGER.format(table=table, event=event, when=event.upper())
                schema_editor.execute(sql, params=None)
    else:
        return  # no trigger, so no row: nothing is ever cached
    schema_editor.execute(
        "INSERT INTO compliance_rulebookstamp (id, stamp) VALUES (1, 'initial')", params=None
    )


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(PG_DROP.format(table=table), params=None)
        schema_editor.execute("DROP FUNCTION IF EXISTS compliance_rule_book_stamp()", params=None)
    elif vendor == "sqlite":
        for table in TABLES:
            for event in SQLITE_EVENTS:
                schema_editor.execute(
                    f"DROP TRIGGER IF EXISTS compliance_rule_book_stamp_{event}_{table}",
                    params=None,
                )


class Migration(migrations.Migration):
    dependencies = [("compliance", "0005_alerts")]

    operations = [
        migrations.CreateModel(
            name="RuleBookStamp",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("stamp", models.CharField(max_length=64)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("id", 1)), name="rule_book_stamp_one_row"
                    )
                ]
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
