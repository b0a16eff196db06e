"""Tables and plotly figures for the Leaderboard tab, from the stats summary (formatting only, no statistics).

Owns: the ratings table (rating with its 95% interval, votes, mean response length in tokens, win rate
and length-controlled (LC) win rate against the base), the pairs table, the bar chart with interval whiskers, the win-rate heatmap, and
the markdown of a judge report.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from alignui.arena.stats import BASELINE

RATING_COLUMNS = ["Rank", "Model", "Rating", "95% interval", "Votes", "Mean length", "Win rate vs base",
                  "LC win rate"]
PAIR_COLUMNS = ["Model A", "Model B", "Votes", "A wins", "B wins", "Ties", "Win rate A", "95% interval", "p-value",
                "LC win rate"]


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _interval(low, high, pct: bool = False) -> str:
    if low is None or high is None:
        return "–"
    return f"[{_pct(low)}, {_pct(high)}]" if pct else f"[{low:+.0f}, {high:+.0f}]"


def ratings_table(summary: dict) -> pd.DataFrame:
    vs_base = {p["model_a"]: p for p in summary["pairs"] if p["model_b"] == BASELINE}
    rows = []
    for rank, m in enumerate(summary["models"], 1):
        p = vs_base.get(m["model"], {})
        rows.append([rank, m["model"], f"{m['rating']:+.0f}", _interval(m["ci_low"], m["ci_high"]), m["battles"],
                     "–" if m.get("mean_length") is None else f"{m['mean_length']:.0f}",
                     f"{_pct(p.get('win_rate_a'))} {_interval(p.get('ci_low'), p.get('ci_high'), True)}" if p else "–",
                     _pct(p.get("lc_win_rate_a")) if p else ("reference" if m["model"] == BASELINE else "–")])
    return pd.DataFrame(rows, columns=RATING_COLUMNS)


def pairs_table(summary: dict) -> pd.DataFrame:
    rows = [[p["model_a"], p["model_b"], p["n"], p["wins_a"], p["wins_b"], p["ties"], _pct(p["win_rate_a"]),
             _interval(p["ci_low"], p["ci_high"], True), f"{p['p_value']:.3g}", _pct(p.get("lc_win_rate_a"))]
            for p in summary["pairs"]]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _empty(title: str, note: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=note, showarrow=False, font={"size": 14})
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, height=320)
    return fig


def ratings_figure(summary: dict) -> go.Figure:
    """Ratings as bars with their 95% bootstrap interval as whiskers (mean-free: 0 is the average model)."""
    models = summary["models"]
    if not models:
        return _empty("Ratings", "No arena votes yet")
    names = [m["model"] for m in models]
    rating = [m["rating"] for m in models]
    plus = [(m["ci_high"] - m["rating"]) if m["ci_high"] is not None else 0 for m in models]
    minus = [(m["rating"] - m["ci_low"]) if m["ci_low"] is not None else 0 for m in models]
    fig = go.Figure(go.Bar(x=names, y=rating, error_y={"type": "data", "array": plus, "arrayminus": minus},
                           marker_color=["#94a3b8" if n == BASELINE else "#6366f1" for n in names],
                           hovertemplate="%{x}: %{y:+.0f} Elo<extra></extra>"))
    fig.update_layout(title="Bradley-Terry rating (Elo scale, 95% bootstrap interval)", yaxis_title="Elo (mean 0)",
                      height=360, margin={"t": 50, "b": 40, "l": 50, "r": 20})
    return fig


def heatmap_figure(summary: dict) -> go.Figure:
    """Row model's win rate against the column model (ties as half), best-rated first."""
    names = [m["model"] for m in summary["models"]]
    if len(names) < 2:
        return _empty("Win rates", "Needs battles between at least two models")
    cell = {(a, b): None for a in names for b in names}
    for p in summary["pairs"]:
        cell[(p["model_a"], p["model_b"])] = p["win_rate_a"]
        cell[(p["model_b"], p["model_a"])] = 1 - p["win_rate_a"]
    z = [[cell[(a, b)] for b in names] for a in names]
    text = [["" if v is None else f"{100 * v:.0f}%" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, text=text, texttemplate="%{text}", zmin=0, zmax=1,
                               colorscale="RdBu", hovertemplate="%{y} beats %{x}: %{text}<extra></extra>"))
    fig.update_layout(title="Win rate of row vs column", yaxis={"autorange": "reversed"}, height=360,
                      margin={"t": 50, "b": 40, "l": 80, "r": 20})
    return fig


def verdicts_markdown(summary: dict) -> str:
    if not summary["models"]:
        return "No arena votes yet: run battles in the **Arena** tab (or judge a batch below) to see ratings."
    lines = [f"- **{v['model']}** vs base: {v['verdict']}" for v in summary["verdicts"]]
    head = f"**{summary['battles']} votes** · ratings are mean-free (0 = the average model)"
    return head + ("\n\n" + "\n".join(lines) if lines else "\n\nNo adapter has met the base model yet.")


def judge_markdown(report: dict) -> str:
    s, agree, bias = report["summary"], report["agreement"], report["position_bias"]
    lines = [f"**Judge {report['judge']}**: {report['judgments']} judgments (each in both orders; a disagreement "
             "between the orders counts as a tie)."]
    lines += [f"- judge's estimate, **{p['model_a']}** vs **{p['model_b']}**: " + (
        p["verdict"] if "verdict" in p else f"{_pct(p['win_rate_a'])} {_interval(p['ci_low'], p['ci_high'], True)}, "
                                            f"n={p['n']}") for p in s["pairs"]]
    if agree["n"]:
        lines.append(f"- agreement with human votes: {_pct(agree['agreement'])} on {agree['n']} battles, Cohen's "
                     f"kappa {agree['kappa']}")
    else:
        lines.append("- agreement with human votes: no voted battle judged yet")
    if bias["decisive_answers"]:
        lines.append(f"- position bias: picks the response shown first {_pct(bias['prefers_first'])} of the time "
                     f"(50% = none; p={bias['p_value']}); both orders agree on {_pct(bias['consistency'])}")
    return "\n".join(lines)
