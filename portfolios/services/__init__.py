"""Every write of the portfolios app, one module per sub-domain:

- `reference`: securities and prices (reference data);
- `models`: model portfolios, their targets and sleeves, CSV import, copies and the
  accounts assigned to them;
- `holdings`: positions, tax lots and cash as fills are booked.
"""
