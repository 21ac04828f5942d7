"""The broker's SettlDate on an execution, and the settlement date an allocation books
(the broker's when its block's last fill gave one, else ours), with ours kept beside it
where the two differ, for operations to check. Rows from before have none: they settled
on the market's cycle, as the ledger's value dates say."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("trading", "0013_order_fewer_indexes")]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="settlement_date",
            field=models.DateField(
                blank=True,
                help_text="SettlDate (64) as the broker reported it; empty when it gave none",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="allocation",
            name="settlement_date",
            field=models.DateField(
                blank=True,
                help_text="The day the cash and the security move: the broker's SettlDate on "
                "the block's last fill when it gave one, else the market's cycle from the "
                "trade date",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="allocation",
            name="computed_settlement_date",
            field=models.DateField(
                blank=True,
                help_text="Our settlement date, kept only where the broker's differs from it "
                "(a difference for operations to check: the broker's is the one booked)",
                null=True,
            ),
        ),
        migrations.AddIndex(
            model_name="allocation",
            index=models.Index(
                condition=models.Q(("computed_settlement_date__isnull", False)),
                fields=["computed_settlement_date"],
                name="alloc_settlement_differs",
            ),
        ),
    ]
