"""PostgreSQL sessions of a durable engine: a transaction left idle past a lease is ended.

A process frozen inside a transaction (``SIGSTOP``, a long GC pause, a stuck VM) keeps its row
locks for as long as it is frozen: between a checkpoint's INSERT and its COMMIT that is a lock
on the run row, and ``FOR UPDATE SKIP LOCKED`` skips a locked run, so no other worker could take
it over however long ago its lease ran out. Every session of the engine therefore carries
``idle_in_transaction_session_timeout`` equal to the shortest lease used on it (at least
``MIN_IDLE_SECONDS``, so a process merely descheduled on a loaded machine for a moment inside
one of its own transactions is not cut off under a sub-second test lease): the server ends
a frozen session (rolling back its uncommitted write and releasing its locks) no later than its
lease runs out, so a takeover happens within a lease plus one poll whatever the old owner was
doing. A healthy process never leaves a transaction of the engine idle for that long; if it
does (a step holding a transaction on ``ctx.database`` across a long call), it fails like a
process that lost its lease. The thawed process finds its connection closed and its run gone.

SQLite has no equivalent: a process frozen while it holds the write lock blocks the file.
"""

from __future__ import annotations

__all__ = ["limit_idle_transactions"]

import math
import threading
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

# Where a pooled connection remembers the limit it was given, so a checkout costs no query.
_APPLIED = "reclaim.durable.idle_transaction_ms"
MIN_IDLE_SECONDS = 1.0


class _Limit:
    def __init__(self) -> None:
        self.milliseconds: int | None = None

    def apply(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        limit = self.milliseconds
        if limit is None or record.info.get(_APPLIED) == limit:
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {int(limit)}")
        finally:
            cursor.close()
        dbapi_connection.commit()
        record.info[_APPLIED] = limit


_limits: weakref.WeakKeyDictionary[Engine, _Limit] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def limit_idle_transactions(engine: Engine, seconds: float) -> None:
    """End any transaction of ``engine`` left idle longer than ``seconds`` (at least
    ``MIN_IDLE_SECONDS``; PostgreSQL only).

    Called with each lease used on the engine; the shortest one wins. Connections get the
    setting at their next checkout from the pool.
    """
    if engine.dialect.name != "postgresql":
        return
    milliseconds = math.ceil(max(seconds, MIN_IDLE_SECONDS) * 1000)
    with _lock:
        limit = _limits.get(engine)
        if limit is None:
            limit = _limits[engine] = _Limit()
            event.listen(engine, "checkout", limit.apply)
        if limit.milliseconds is None or milliseconds < limit.milliseconds:
            limit.milliseconds = milliseconds
