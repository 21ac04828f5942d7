"""The FIX gateway: one process per broker session, on the engine in `trading/fix/`.

While it runs it owns the session's socket (our side initiates) and:

* sends what the routing worker wrote to the session's outbox (`outbox`);
* stores each application message the broker sends in the inbox and applies
  execution reports through the trading services (`inbound`);
* keeps the sequence numbers and sent messages in the database (`store`), so
  that a restarted gateway carries on where the last one stopped;
* holds a lock on the session, so a second gateway for it refuses to start
  (`lock`: a PostgreSQL advisory lock; on the embedded SQLite, a file lock).

`process.Gateway` ties them together.
"""

from .lock import GatewayBusy, SessionLock
from .process import Gateway

__all__ = ["Gateway", "GatewayBusy", "SessionLock"]
