"""The DuckDB file: one connection per process, a cursor per thread, migrations, transactions.

Owns: opening the database under the data root (with a clear message when
another process holds it), bringing the schema forward, and `tx()`, the only
way the Store writes. DuckDB uses optimistic concurrency inside one process:
two threads updating the same row conflict, so `tx()` retries a conflicted
transaction a few times before giving up.

Invariants:
- A write is committed when `tx()` returns; callers tell the user "saved" only after.
- Each thread uses its own cursor (DuckDB connections are not thread-safe).
- After `close()` the Database holds no DuckDB object (connection and every thread's cursor are dropped).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import duckdb

from alignui.db.schema import LATEST_VERSION, MIGRATIONS
from alignui.errors import StorageBusyError
from alignui.vocab import last_user_turn

T = TypeVar("T")


def new_id() -> str:
    """A short random id (48 bits of uuid4): opaque, unguessable enough, and says nothing about content."""
    return uuid.uuid4().hex[:12]


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def last_user_content(messages_json: Any) -> str:
    """The last user turn of a stored `messages` JSON value ("" when there is none): what lists show as the prompt."""
    return last_user_turn(from_json(messages_json) or [])


class Database:
    """The process's one connection to the DuckDB file."""

    def __init__(self, path: Path | str, *, retries: int = 8):
        import duckdb  # here, not at the top: the records and the serving core import this package without a database

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StorageBusyError(
                    f"the database {self.path} is open in another process (is the alignui app running?); "
                    "stop that process, or do this from the app instead") from exc
            raise
        self._local = threading.local()
        self._retries = retries
        self._closed = False
        try:
            self.migrate()
        except BaseException:  # e.g. a newer schema: do not keep the file open (and locked) until GC
            self.close()
            raise

    # -- connections -------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (created on first use)."""
        con = self._con
        if self._closed or con is None:
            raise RuntimeError("the database is closed")
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = con.cursor()
            self._local.cur = cur
        return cur

    def close(self, wait_s: float = 10.0) -> None:
        """Close the file. New cursors are refused at once; a query still running in another thread
        (e.g. a UI timer during shutdown) makes DuckDB report the connection busy, so retry until it ends."""
        import duckdb

        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._con.close()
                # Hold no DuckDB object once closed: whatever still references this Store (a library cache
                # keeping an old Gradio app alive) would otherwise keep them alive to interpreter exit.
                self._con, self._local = None, threading.local()
                return
            except duckdb.Error as exc:
                if "busy" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self.cursor()
        cur.begin()
        try:
            yield cur
        except BaseException:
            cur.rollback()
            raise
        cur.commit()

    def tx(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work(cursor)` in one transaction, committed before returning; retry write conflicts."""
        import duckdb

        for attempt in range(self._retries + 1):
            try:
                with self._transaction() as cur:
                    return work(cur)
            except duckdb.TransactionException:
                if attempt == self._retries:
                    raise
                time.sleep(0.005 * (2 ** attempt))
        raise AssertionError("unreachable")

    def query(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        return self.cursor().execute(sql, params).fetchall()

    def query_df(self, sql: str, params: list | tuple = ()):
        return self.cursor().execute(sql, params).df()

    # -- schema ------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        cur = self.cursor()
        exists = cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'").fetchone()[0]
        if not exists:
            return 0
        return cur.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def migrate(self) -> int:
        """Apply every migration the file has not recorded yet, in order; return the number applied.

        Applied versions are tracked individually (not just the maximum), so a migration merged out of
        numeric order is still applied to databases that are already past its number.
        """
        cur = self.cursor()
        cur.execute("""CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY, description TEXT, applied_at TIMESTAMP DEFAULT current_timestamp)""")
        current = self.version
        if current > LATEST_VERSION:
            raise RuntimeError(
                f"{self.path} has schema version {current}, newer than this alignui ({LATEST_VERSION}); "
                "upgrade alignui or point --storage at another directory")
        done = {row[0] for row in cur.execute("SELECT version FROM schema_version").fetchall()}
        applied = 0
        for version, description, statements in sorted(MIGRATIONS, key=lambda m: m[0]):
            if version in done:
                continue

            def apply(c, version=version, description=description, statements=statements):
                for stmt in statements:
                    c.execute(stmt)
                c.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)",
                          [version, description])

            self.tx(apply)
            applied += 1
        return applied
