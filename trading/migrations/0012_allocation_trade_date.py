"""Allocation.trade_date: the day an allocation books (its fills' trading day), kept on
the row so that a bust or correction reverses and books again on that day. Rows booked
before it get the day they were booked, the day the books used until now."""

from django.db import migrations, models
from django.db.models.functions import TruncDate


def booked_day(apps, schema_editor):
    Allocation = apps.get_model("trading", "Allocation")
    Allocation.objects.filter(trade_date__isnull=True).update(trade_date=TruncDate("created_at"))


class Migration(migrations.Migration):
    dependencies = [("trading", "0011_order_lot_method")]

    operations = [
        migrations.AddField(
            model_name="allocation",
            name="trade_date",
            field=models.DateField(null=True),
        ),
        migrations.RunPython(booked_day, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="allocation",
            name="trade_date",
            field=models.DateField(
                help_text="The trading day of the block's last fill, by its broker's day: "
                "the lots' purchase or sale date, the day settlement counts from (not the "
                "day it was booked)"
            ),
        ),
    ]
