"""Turning a database copy (DuckDB's EXPORT DATABASE folder, as Store.export_tables writes it) back into a file.

Owns: `import_database`, the inverse of Store.export_tables, and `saved_votes`, the count a backup and a
restore report. Invariant: the target file appears complete or not at all (built beside, then renamed).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb


def import_database(dump_dir: Path, db_path: Path) -> None:
    """Build `db_path` (which must not exist) from the EXPORT DATABASE folder `dump_dir`."""
    db_path = Path(db_path)
    if db_path.exists():
        raise FileExistsError(f"{db_path} exists; a restore never overwrites a database")
    tmp = db_path.with_name(f".{db_path.name}.restoring")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    literal = str(Path(dump_dir).resolve()).replace("'", "''")  # IMPORT DATABASE takes no bound parameters
    con = duckdb.connect(str(tmp))
    try:
        con.execute(f"IMPORT DATABASE '{literal}'")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, db_path)


def saved_votes(store) -> int:
    """Decided, not deleted comparisons of every kind (annotation and arena votes)."""
    return store.query("SELECT count(*) FROM comparisons WHERE verdict IS NOT NULL AND deleted_at IS NULL")[0][0]
