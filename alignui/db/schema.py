"""The DuckDB schema as an ordered list of forward migrations.

Owns: every DDL statement. Migration N moves a database at version N-1 to N;
they only ever run forward, each inside one transaction together with the
row that records it in schema_version. Append new migrations; never edit one
that has shipped. Numbers reserved while features land in parallel:
2 data import/export, 3 arena and judges, 4 identity and agreement,
5 annotation workspace, 6 training runs, 7 thumbs ratings.
"""

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "initial data model", [
        """CREATE TABLE prompts (
            id TEXT PRIMARY KEY,
            messages JSON NOT NULL,
            content_hash TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT 'user',
            split TEXT NOT NULL DEFAULT 'train' CHECK (split IN ('train', 'heldout')),
            meta JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
        "CREATE INDEX prompts_hash ON prompts(content_hash)",
        """CREATE TABLE generations (
            id TEXT PRIMARY KEY,
            prompt_id TEXT NOT NULL,
            model_ref TEXT NOT NULL,
            params JSON,
            text TEXT NOT NULL,
            n_tokens INTEGER,
            latency_ms DOUBLE,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
        """CREATE TABLE comparisons (
            id TEXT PRIMARY KEY,
            prompt_id TEXT NOT NULL,
            gen_a TEXT NOT NULL,
            gen_b TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('annotate', 'arena')),
            verdict TEXT CHECK (verdict IN ('a', 'b', 'tie', 'both_bad', 'skip')),
            edited_chosen TEXT,
            annotator TEXT,
            source TEXT NOT NULL DEFAULT 'app',
            meta JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            decided_at TIMESTAMP,
            duration_ms DOUBLE,
            deleted_at TIMESTAMP,
            deleted_by TEXT)""",
        """CREATE TABLE snapshots (
            id TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            rows INTEGER NOT NULL,
            test_rows INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            filters JSON,
            manifest JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            method TEXT NOT NULL,
            status TEXT NOT NULL,
            config JSON,
            metrics JSON,
            adapter_path TEXT,
            snapshot_id TEXT,
            snapshot_sha256 TEXT,
            base_model TEXT,
            parent_run TEXT,
            error TEXT,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            finished_at TIMESTAMP)""",
        """CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL DEFAULT 'annotator' CHECK (role IN ('annotator', 'admin')),
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
        """CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value JSON,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            updated_by TEXT)""",
    ]),
    (2, "data import/export: imported pair hashes, import log, audit of verdict fixes and deletes", [
        """CREATE TABLE import_pairs (
            comparison_id TEXT NOT NULL,
            pair_hash TEXT NOT NULL,
            import_id TEXT NOT NULL)""",
        """CREATE TABLE imports (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            format TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('pairs', 'prompts')),
            imported INTEGER NOT NULL,
            skipped INTEGER NOT NULL,
            reasons JSON,
            options JSON,
            actor TEXT,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
        """CREATE TABLE comparison_audit (
            id TEXT PRIMARY KEY,
            comparison_id TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('fix_verdict', 'delete')),
            old_verdict TEXT,
            new_verdict TEXT,
            old_edited_chosen TEXT,
            actor TEXT,
            note TEXT,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
    ]),
    (3, "arena and judges: automatic judgments of two generations", [
        """CREATE TABLE judgments (
            id TEXT PRIMARY KEY,
            judge TEXT NOT NULL,
            comparison_id TEXT,
            prompt_id TEXT NOT NULL,
            gen_a TEXT NOT NULL,
            gen_b TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('a', 'b', 'tie')),
            first_order TEXT CHECK (first_order IN ('first', 'second', 'tie')),
            second_order TEXT CHECK (second_order IN ('first', 'second', 'tie')),
            score DOUBLE,
            meta JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp)""",
        "CREATE INDEX judgments_judge ON judgments(judge)",
        "CREATE INDEX judgments_comparison ON judgments(comparison_id)",
    ]),
    (4, "identity and agreement: gold items, who changed a role", [
        """CREATE TABLE gold_items (
            gen_a TEXT NOT NULL,
            gen_b TEXT NOT NULL,
            prompt_id TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('a', 'b', 'tie', 'both_bad')),
            note TEXT,
            created_by TEXT,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            PRIMARY KEY (gen_a, gen_b))""",
        "ALTER TABLE users ADD COLUMN updated_by TEXT",
        "ALTER TABLE users ADD COLUMN updated_at TIMESTAMP",
    ]),
    # Thumbs up/down get their own table rather than comparisons with kind 'single': a comparison has two
    # generations (gen_b NOT NULL, every query joins both), so a one-response row would break those joins
    # and every count that does not filter by kind. label is NULL while the rating is pending.
    (7, "thumbs up/down ratings of single responses", [
        """CREATE TABLE ratings (
            id TEXT PRIMARY KEY,
            prompt_id TEXT NOT NULL,
            generation_id TEXT NOT NULL,
            label TEXT CHECK (label IN ('up', 'down', 'skip')),
            annotator TEXT,
            source TEXT NOT NULL DEFAULT 'app',
            meta JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            decided_at TIMESTAMP,
            duration_ms DOUBLE,
            deleted_at TIMESTAMP,
            deleted_by TEXT)""",
        "CREATE INDEX ratings_prompt ON ratings(prompt_id)",
    ]),
]

LATEST_VERSION = max(version for version, _, _ in MIGRATIONS)
