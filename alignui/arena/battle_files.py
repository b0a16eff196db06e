"""Reading battle files in Chatbot Arena's form, and the stats summary the `stats` command prints.

Owns: loading .csv, .jsonl and .json (an array of records, as Chatbot Arena publishes its
clean_battle files) into a battles table with columns model_a, model_b, winner in
{model_a, model_b, tie, tie (bothbad)}, plus length_a / length_b when the file has them
(columns length_a/length_b, or Chatbot Arena's conv_metadata.sum_assistant_{a,b}_tokens).
Every problem a user can cause is a UserError naming the file, the line and the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from alignui.runs import lineage_label
from alignui.errors import UserError
from alignui.arena.stats import WINNERS, summarize

REQUIRED = ("model_a", "model_b", "winner")
SUFFIXES = (".csv", ".jsonl", ".json")


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path.name} line {number} is not valid JSON ({exc.msg}); each line must be "
                                "one battle object like {\"model_a\": ..., \"model_b\": ..., \"winner\": ...}") from exc
            if not isinstance(record, dict):
                raise UserError(f"{path.name} line {number} is not a JSON object; each line must be one battle")
            records.append(record)
    return pd.DataFrame.from_records(records)


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype={"model_a": str, "model_b": str, "winner": str})
        if suffix == ".jsonl":
            return _read_jsonl(path)
        data = json.loads(path.read_text(encoding="utf-8"))
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (UnicodeDecodeError, pd.errors.ParserError, json.JSONDecodeError) as exc:
        raise UserError(f"{path.name} cannot be read as {suffix[1:]} ({exc}); save it as UTF-8 "
                        f"{suffix[1:]} with columns {', '.join(REQUIRED)}") from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UserError(f"{path.name} must hold a JSON array of battle objects (or use .jsonl, one per line)")
    return pd.DataFrame.from_records(data)


def _lengths(df: pd.DataFrame) -> pd.DataFrame:
    if "conv_metadata" in df and not {"length_a", "length_b"} <= set(df):
        meta = df["conv_metadata"].map(lambda m: m if isinstance(m, dict) else {})
        df["length_a"] = meta.map(lambda m: m.get("sum_assistant_a_tokens"))
        df["length_b"] = meta.map(lambda m: m.get("sum_assistant_b_tokens"))
    return df


def read_battles(path: str | Path) -> pd.DataFrame:
    """The battles in `path` (.csv, .jsonl or .json), checked; raises UserError with the fix on bad input."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"no battles file at {path}; pass --battles with a .csv, .jsonl or .json file")
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(f"{path.name}: battles files must end in {', '.join(SUFFIXES)}")
    df = _read(path)
    if df.empty:
        raise UserError(f"{path.name} holds no battles; it needs rows with {', '.join(REQUIRED)}")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(f"{path.name} lacks the column(s) {', '.join(missing)} (found: "
                        f"{', '.join(map(str, df.columns[:12]))}); battles need model_a, model_b and winner "
                        "(Chatbot Arena's form)")
    for col in ("model_a", "model_b"):
        blank = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if blank.any():
            raise UserError(f"{path.name} row {int(blank.idxmax()) + 1} has an empty {col}; every battle names "
                            "both models")
        df[col] = df[col].astype(str)
    bad = ~df["winner"].isin(WINNERS)
    if bad.any():
        row = int(bad.idxmax())
        raise UserError(f"{path.name} row {row + 1} has winner {df['winner'][row]!r}; winner must be one of "
                        f"{', '.join(WINNERS)}")
    return _lengths(df)


def stats_summary(battles: pd.DataFrame, *, bootstrap: int = 1000, seed: int = 0) -> dict:
    """The contract's stats summary for a battles table (ratings, pairs, verdicts against 'base')."""
    if bootstrap < 0 or bootstrap > 100_000:
        raise UserError(f"--bootstrap must be between 0 and 100000 rounds, got {bootstrap}")
    return summarize(battles, bootstrap=bootstrap, seed=seed)


def arena_summary(store, *, bootstrap: int = 1000, seed: int = 0) -> dict:
    """The stats summary of the arena votes in the database (what /leaderboard answers); each model also
    carries its `lineage` in training in rounds ("base", "round 2 ← <parent run>"; alignui.runs.lineage_label)."""
    summary = stats_summary(store.arena_battles(), bootstrap=bootstrap, seed=seed)
    runs = store.list_runs()
    for model in summary["models"]:
        model["lineage"] = lineage_label(model["model"], runs)
    return summary
