"""The units of the settlement-ledger rows booked before the ledger kept them
(portfolios migration 0012): each allocation's trade row that stands (not reversed)
gets the allocation's quantity, signed by its order's side, so that a bond's face on
record is read from the ledger rather than rebuilt from its lots (docs/instruments.md).

A row is filled only where nothing is guessed: the allocation has that one standing
trade row, and its cash has the side's sign (a buy pays, a sale receives). A row
reversed by a bust or a correction keeps no units (what it held then is not on
record), and neither does its reversing row; the face on record nets such a pair to
nothing (``portfolios.services.lifecycle._faces_on_record``). A row of no allocation
stays as it is. Here rather than in portfolios: the allocations are trading's."""

from collections import defaultdict

from django.db import migrations

BUYING = ("buy", "buy_to_cover")


def backfill(apps, schema_editor):
    CashMovement = apps.get_model("portfolios", "CashMovement")
    Allocation = apps.get_model("trading", "Allocation")
    trades = CashMovement.objects.filter(reason="trade", allocation_id__isnull=False)
    reversed_ids = set(trades.filter(reverses__isnull=False).values_list("reverses_id", flat=True))
    standing = defaultdict(list)  # allocation id -> its standing trade rows
    for row in trades.filter(reverses__isnull=True).only(
        "pk", "allocation_id", "amount", "quantity"
    ):
        if row.pk not in reversed_ids:
            standing[row.allocation_id].append(row)
    wanted = [rows[0] for rows in standing.values() if len(rows) == 1]
    wanted = [row for row in wanted if row.quantity is None]
    allocations = {
        pk: (quantity, side)
        for pk, quantity, side in Allocation.objects.filter(
            pk__in={row.allocation_id for row in wanted}
        ).values_list("pk", "quantity", "order__side")
    }
    filled = []
    for row in wanted:
        if row.allocation_id not in allocations:
            continue  # an allocation gone: nothing to read the units from
        quantity, side = allocations[row.allocation_id]
        buying = side in BUYING
        if (buying and row.amount > 0) or (not buying and row.amount < 0):
            continue  # cash against the side's sign: not this allocation's trade as booked
        row.quantity = quantity if buying else -quantity
        filled.append(row)
    CashMovement.objects.bulk_update(filled, ["quantity"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0015_fix_outbox_notify"),
        ("portfolios", "0012_cash_movement_quantity"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
