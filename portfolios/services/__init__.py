"""Every write of the portfolios app, one module per sub-domain:

- `reference`: securities, prices and model portfolios (reference data);
- `holdings`: positions, tax lots and cash as fills are booked.
"""
