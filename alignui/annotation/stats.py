"""Live annotation counters as small pandas DataFrames, ready for Gradio's native plots and tables.

Owns: pairs collected (decided annotation pairs, skips included; the thumbs counts beside them), by verdict,
by annotator, votes over time (cumulative, one point per decision), and one
annotator's history of recent verdicts. Read-only; every number comes from
the Store at call time, so a refresh is just another call.
"""

from __future__ import annotations

import pandas as pd

from alignui.db import VERDICTS, Store
from alignui.vocab import ANONYMOUS, SHORT_NAMES

VERDICT_NAMES = SHORT_NAMES
HISTORY_COLUMNS = ["when", "prompt", "verdict", "edited", "turn", "pair"]


def summary_markdown(store: Store) -> str:
    counts, thumbs = store.vote_counts(), store.rating_counts()
    line = _pairs_line(store, counts)
    if thumbs["total"]:  # thumbs up/down from the Thumbs tab (their own table, alignui.db.ratings)
        line += f" · thumbs: {thumbs['up']} up, {thumbs['down']} down, {thumbs['skip']} skipped"
    return line


def _pairs_line(store: Store, counts: dict[str, int]) -> str:
    if not counts["total"] and not counts["pending"]:
        return "No pairs collected yet: the counters and charts fill in with the first verdict."
    parts = [f"**{counts['total']}** pair{'s' if counts['total'] != 1 else ''} collected"]
    parts += [f"{VERDICT_NAMES[v]} {counts[v]}" for v in VERDICTS]
    people = store.votes_by_annotator()
    if people:
        parts.append(f"{len(people)} annotator{'s' if len(people) != 1 else ''}")
    if counts["pending"]:
        parts.append(f"{counts['pending']} waiting for a verdict")
    return " · ".join(parts)


def by_verdict(store: Store) -> pd.DataFrame:
    counts = store.vote_counts()
    return pd.DataFrame({"verdict": [VERDICT_NAMES[v] for v in VERDICTS], "votes": [counts[v] for v in VERDICTS]})


def by_annotator(store: Store) -> pd.DataFrame:
    rows = store.votes_by_annotator()
    return pd.DataFrame(rows, columns=["annotator", "votes"]) if rows else pd.DataFrame(
        {"annotator": pd.Series(dtype=str), "votes": pd.Series(dtype=int)})


def over_time(store: Store) -> pd.DataFrame:
    """Cumulative decided pairs against time (one row per decision, plus a zero point before the first)."""
    times = [t for t, _ in store.decision_times()]
    if not times:
        return pd.DataFrame({"time": pd.Series(dtype="datetime64[us]"), "pairs": pd.Series(dtype=int)})
    frame = pd.DataFrame({"time": pd.to_datetime(times), "pairs": range(1, len(times) + 1)})
    start = pd.DataFrame({"time": [frame["time"].iloc[0] - pd.Timedelta(seconds=1)], "pairs": [0]})
    return pd.concat([start, frame], ignore_index=True)


def history(store: Store, annotator: str, limit: int = 20) -> pd.DataFrame:
    """The annotator's last `limit` verdicts, newest first; nothing for no name or 'anonymous' (shared by everyone
    who did not give a name: one person's history never shows another's votes)."""
    rows = store.annotator_history(annotator, limit) if annotator and annotator != ANONYMOUS else []
    return pd.DataFrame(
        [[r.decided_at.strftime("%H:%M:%S") if r.decided_at else "", _short(r.prompt), VERDICT_NAMES[r.verdict],
          "yes" if r.edited else "", r.turn, r.pair_id] for r in rows], columns=HISTORY_COLUMNS)


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
