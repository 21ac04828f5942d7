"""What spans the domain apps: rebalance runs (from drift to proposed, approved
and released orders) and the order workflow above trading.

The top domain layer: it calls portfolios, trading and compliance; nothing but
the project package imports it.
"""
