"""On PostgreSQL a row put in a FIX session's outbox wakes that session's gateway.

The trigger NOTIFYs the channel ``oms_fix_outbox_<session id>`` for every row
inserted; PostgreSQL delivers the notification when the inserting transaction
commits (and not at all if it rolls back), once per channel and transaction.
The gateway LISTENs on its session's channel and drains the outbox when woken;
its poll stays as the fallback (and is all there is on SQLite).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION trading_fixoutbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('oms_fix_outbox_' || NEW.session_id, '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trading_fixoutbox_notify
    AFTER INSERT ON trading_fixoutbox
    FOR EACH ROW EXECUTE FUNCTION trading_fixoutbox_notify();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS trading_fixoutbox_notify ON trading_fixoutbox;
DROP FUNCTION IF EXISTS trading_fixoutbox_notify();
"""


def on_postgresql(sql: str):
    """A migration step that runs ``sql`` on PostgreSQL and nothing elsewhere."""

    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("trading", "0014_settlement_dates")]

    operations = [migrations.RunPython(on_postgresql(FORWARD), on_postgresql(BACKWARD))]
