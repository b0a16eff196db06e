"""Store methods for the `settings` table: small app-wide values an operator edits in the app.

Owns: reading and writing one JSON value per key (the annotation guidelines, the secret that
keeps browser-remembered preferences readable across restarts), each write stamped with who
made it. Permission checks happen in the core modules that call these (e.g. alignui.annotation.guidelines).
"""

from __future__ import annotations

from typing import Any

from alignui.db.core import from_json, to_json


class SettingsMixin:
    """Mixed into Store; relies on Database.tx / query."""

    def get_setting(self, key: str, default: Any = None) -> Any:
        rows = self.query("SELECT value FROM settings WHERE key = ?", [key])
        return from_json(rows[0][0]) if rows else default

    def put_setting(self, key: str, value: Any, *, by: str | None = None) -> None:
        """Insert or replace one setting (committed before returning)."""
        def work(cur):
            cur.execute("DELETE FROM settings WHERE key = ?", [key])
            cur.execute("INSERT INTO settings (key, value, updated_by) VALUES (?, ?, ?)", [key, to_json(value), by])

        self.tx(work)

    def setting_or_create(self, key: str, make) -> Any:
        """The stored value of `key`, storing `make()` first if there is none (first writer wins)."""
        def work(cur):
            row = cur.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
            if row:
                return from_json(row[0])
            value = make()
            cur.execute("INSERT INTO settings (key, value) VALUES (?, ?)", [key, to_json(value)])
            return value

        return self.tx(work)
