"""Broker adapters: how a route reaches a broker and how its reports come back.

An adapter implements `BrokerAdapter` (send, cancel, replace, status). It never
writes to the database: every report it receives is handed to the report sink
it was built with, which in the application is the execution service
(`trading.services.executions.execution_apply`). See docs/architecture.md, "Brokers".
"""

from .base import BrokerAdapter, ExecutionReport, ReplaceTerms, ReportSink, RouteTicket
from .registry import adapter_for

__all__ = [
    "BrokerAdapter",
    "ExecutionReport",
    "ReplaceTerms",
    "ReportSink",
    "RouteTicket",
    "adapter_for",
]
