"""Filling SQLite staging tables on a second connection while the run's connection reads them.

A first run inserts ~1.5 M new recommendations from a narrow stage (see
``reclaim.recommend.store``). Filling the stage is Python work that holds the GIL (each row is
made a tuple and bound value by value); the ``INSERT … SELECT`` from it into the table is
SQLite's alone, which the ``sqlite3`` module runs without the GIL. On one connection the two
took turns (at 1 M resources ~6 s of filling, then ~10 s of inserting, batch after batch) and
one of the machine's cores was idle throughout. Here a thread fills the next batch into a
second staging database while the run's connection inserts the previous one.

The stages are two in-memory databases in SQLite's shared-cache mode, each attached to the run's
connection: an in-memory database is visible to another connection only through a shared
cache, and a stage in a file of its own would be read in the snapshot the run's transaction
first saw of it. There are two, not one, since a statement holds the shared cache's mutex of
every database it reads for as long as it runs: the thread writes to the stage the run's
connection is not reading. The run's connection reads them with ``read_uncommitted``, so its
long transaction keeps no table lock on a stage, and the hand-over is by queue, so it never
reads a stage that is being filled. Both vanish with their last connection; a process killed
meanwhile leaves nothing but the run's own transaction, which SQLite rolls back.
"""

from __future__ import annotations

__all__ = ["StageFeeder", "shared_cache_available"]

import functools
import queue
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect

# Stages filled and read in turn: one filled while the other is read.
_SLOTS: Final = 2
# How often a thread waiting for a free stage checks whether the run gave up.
_POLL_SECONDS: Final = 0.1
# Key of ``Connection.info`` listing the stages a run's connection attached (see detach_all).
ATTACHED_KEY: Final = "reclaim_attached_stages"


class _Done:
    """Put in the queue after the last batch."""


@functools.cache
def shared_cache_available() -> bool:
    """Whether this SQLite shares an in-memory database between connections.

    A build with ``SQLITE_OMIT_SHARED_CACHE`` gives each connection a private database for the
    same name: the run's connection would read empty stages. There the feeder fills one stage,
    a temporary table of the run's connection, in the calling thread, as before the feeder.
    """
    uri = f"file:reclaim_probe_{uuid.uuid4().hex}?mode=memory&cache=shared"
    first = sqlite3.connect(uri, uri=True)
    second = sqlite3.connect(uri, uri=True)
    try:
        first.execute("CREATE TABLE probe (x)")
        found = second.execute("SELECT count(*) FROM sqlite_master WHERE name = 'probe'")
        return bool(found.fetchone()[0])
    except sqlite3.Error:
        return False
    finally:
        first.close()
        second.close()


class StageFeeder:
    """Fills ``table`` with each batch of ``batches`` in turn, in a thread; iterating yields
    the schema name under which the run's connection reads the batch just filled.

    ``batches`` is consumed in the thread (so what makes its rows runs there too): each item is
    one batch's rows, tuples in the order of ``table``'s columns. The stage yielded last is
    refilled only once the iteration asks for the next one, so the caller reads it meanwhile.
    Use as a context manager around the iteration; leaving it stops and joins the thread.
    """

    def __init__(
        self, driver: sqlite3.Connection, table: sa.Table, batches: Iterable[Iterable[Any]]
    ) -> None:
        self._driver = driver
        self._table = table
        self._batches = batches
        token = uuid.uuid4().hex
        self.schemas = tuple(f"reclaim_stage_{token}_{slot}" for slot in range(_SLOTS))
        self._uris = tuple(f"file:{schema}?mode=memory&cache=shared" for schema in self.schemas)
        self._fillers: list[sqlite3.Connection] = []
        self._free = [threading.Semaphore(1) for _ in range(_SLOTS)]
        self._ready: queue.Queue[int | _Done | BaseException] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="reclaim-stage", daemon=True)
        self._held: int | None = None
        self._inline = not shared_cache_available()
        if self._inline:
            # No stage database to attach: the run's own temporary table (see
            # shared_cache_available).
            self.schemas = ()
        columns = [column.name for column in table.columns]
        self._insert = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )

    def __enter__(self) -> StageFeeder:
        create = str(sa.schema.CreateTable(self._table).compile(dialect=sqlite_dialect.dialect()))
        # Plain in a stage database of its own, whatever the table's own DDL says.
        create = create.replace("CREATE TEMPORARY TABLE", "CREATE TABLE")
        if self._inline:
            # Kept by a connection that is never closed (an in-memory database): emptied
            # before each batch.
            self._driver.execute(
                create.replace("CREATE TABLE", "CREATE TEMPORARY TABLE IF NOT EXISTS", 1)
            )
            return self
        for uri, schema in zip(self._uris, self.schemas, strict=True):
            filler = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            self._fillers.append(filler)
            filler.execute(create)
            self._driver.execute("ATTACH DATABASE ? AS " + schema, (uri,))
        self._driver.execute("PRAGMA read_uncommitted = 1")
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[str]:
        if self._inline:
            for rows in self._batches:
                self._driver.execute(f"DELETE FROM temp.{self._table.name}")
                self._driver.executemany(self._insert, rows)
                yield "temp"
            return
        while True:
            self._release()
            item = self._ready.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, BaseException):
                raise item
            self._held = item
            yield self.schemas[item]

    def _release(self) -> None:
        if self._held is not None:
            self._free[self._held].release()
            self._held = None

    def _fill(self) -> None:
        try:
            for index, rows in enumerate(self._batches):
                slot = index % _SLOTS
                while not self._free[slot].acquire(timeout=_POLL_SECONDS):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                filler = self._fillers[slot]
                filler.execute("BEGIN")
                filler.execute(f"DELETE FROM {self._table.name}")
                filler.executemany(self._insert, rows)
                filler.execute("COMMIT")
                self._ready.put(slot)
            self._ready.put(_Done())
        except BaseException as exc:
            # Raised in the reading thread, which is the one that can act on it.
            self._ready.put(exc)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._inline:
            return
        self._stop.set()
        self._release()
        if self._thread.is_alive():
            self._thread.join()
        for filler in self._fillers:
            filler.close()
        self._driver.execute("PRAGMA read_uncommitted = 0")
