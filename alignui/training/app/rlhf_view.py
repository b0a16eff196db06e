"""What the Train tab's RLHF panel shows, as plain data read from run directories (no gradio, no torch).

Owns: `rlhf_view(layout, run_id)`: for the selected run (an RL run, or a reward/SFT stage of one) the stages
of its pipeline with their states, what is resident in memory, the reward model's held-out accuracy and
reward-margin histogram, the RL curves (mean reward, KL to the reference, response length), the latest
rollouts with their rewards (reward hacking shows here first), the RL watch-outs and the verdicts;
`reward_model_choices(layout)` for the reward-model picker.

Invariant: reads files only (status.json, metrics.jsonl, reward_eval.json, rollouts.jsonl), so the panel can
refresh every second while a job writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alignui.runs import RunDir, list_run_dirs, read_json
from alignui.training.rlhf_eval import read_rollouts, rl_watchouts

#: RL curves: plot key -> ((metric, series label), ...), TRL's metric names.
RL_CURVES = {"reward": (("reward", "mean reward"),),
             "kl": (("kl", "KL to reference (nats/token)"),),
             "length": (("completions/mean_length", "mean response length (tokens)"),)}
RESIDENT_BEFORE = ("Memory: the policy and the reference share ONE copy of the base model (reference = the same "
                   "weights with the LoRA adapter switched off); the reward model is a second copy with its LoRA "
                   "merged. No separate reference or value model is loaded (PPO's critic is a second LoRA "
                   "adapter and a value head on the same copy).")


@dataclass
class RLHFView:
    stages: list[dict[str, Any]] = field(default_factory=list)  # label, run, state, detail
    resident: str = RESIDENT_BEFORE
    reward_summary: str = ""
    histogram: list[dict[str, Any]] = field(default_factory=list)  # margin, pairs
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    n_metrics: int = 0
    rollouts: list[list[Any]] = field(default_factory=list)  # step, prompt, completion, reward
    watchouts: list[str] = field(default_factory=list)
    verdict: str = ""

    def follow(self, selected: str) -> str:
        """The stage to show next: a later stage once `selected` is done and that stage has started or waits."""
        ids = [s["run"] for s in self.stages]
        if selected not in ids or self.stages[ids.index(selected)]["state"] != "done":
            return selected
        later = [s for s in self.stages[ids.index(selected) + 1:] if s["state"] in ("queued", "running")]
        return later[0]["run"] if later else selected

    @property
    def stage_markdown(self) -> str:
        icons = {"done": "✅", "running": "⏳", "queued": "🕒", "failed": "❌", "cancelled": "⏹️"}
        lines = [f"{i + 1}. {icons.get(s['state'], '·')} **{s['label']}** `{s['run']}` · {s['state']}"
                 + (f" · {s['detail']}" if s["detail"] else "") for i, s in enumerate(self.stages)]
        return "\n".join(lines)


def _stage(label: str, run: RunDir) -> dict[str, Any]:
    status = run.read_status()
    step, total = status.get("step"), status.get("max_steps")
    detail = status.get("phase", "") + (f", step {step}/{total}" if total else "")
    return {"label": label, "run": run.id, "state": status.get("state", "unknown"), "detail": detail}


def _open(layout, run_id: str | None) -> RunDir | None:
    try:
        return RunDir.open(layout, run_id) if run_id else None
    except Exception:  # deleted or not a plain id: the panel just shows less
        return None


def rl_run_for(layout, run_id: str) -> RunDir | None:
    """The RL run of the pipeline that `run_id` belongs to (itself, or the RL run naming it as a stage)."""
    run = _open(layout, run_id)
    if run is None:
        return None
    method, _ = run.read_config()
    if method == "rlhf":
        return run
    for other in list_run_dirs(layout):
        m, settings = other.read_config()
        if m == "rlhf" and run_id in (str(settings.get("reward_model", "")).split(",")[0].strip(),
                                      str(settings.get("init_adapter", "")).strip()):
            return other
    return None


def curve_rows(metrics: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in RL_CURVES}
    for record in metrics:
        for plot, series in RL_CURVES.items():
            for key, label in series:
                if isinstance(record.get(key), (int, float)):
                    out[plot].append({"step": int(record.get("step", 0)), "value": float(record[key]),
                                      "series": label})
    return out


def histogram_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    hist = report.get("histogram") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    return [{"margin": round((edges[i] + edges[i + 1]) / 2, 3), "pairs": int(c)} for i, c in enumerate(counts)]


def _reward_part(view: RLHFView, reward: RunDir) -> None:
    report = read_json(reward.path / "reward_eval.json", {}) or {}
    view.histogram = histogram_rows(report)
    if report.get("n"):
        view.reward_summary = (f"Reward model `{reward.id}`: held-out accuracy **{report['accuracy']:.0%}** on "
                               f"{report['n']} pairs (chosen outscores rejected), mean margin "
                               f"{report['mean_margin']:+.2f}")
    verdict = (reward.read_status().get("summary") or {}).get("verdict")
    view.verdict = verdict or ""


def rlhf_view(layout, run_id: str | None) -> RLHFView | None:
    """The RLHF panel for the selected run; None when the run is not part of an RLHF pipeline."""
    from alignui.training.app.rlhf_plan import plan_of

    rl = rl_run_for(layout, run_id) if run_id else None
    if rl is None:
        lone = _open(layout, run_id)
        if lone is None or lone.read_config()[0] != "reward":
            return None
        view = RLHFView(stages=[_stage("reward model", lone)])
        _reward_part(view, lone)
        return view
    plan = plan_of(layout, rl.id)
    runs = {label: _open(layout, rid) for label, rid in plan.stages}
    view = RLHFView(stages=[_stage(label, run) for label, run in runs.items() if run is not None])
    if runs.get("reward model") is not None:
        _reward_part(view, runs["reward model"])
    status, metrics = rl.read_status(), rl.read_metrics()
    view.resident = status.get("resident") or RESIDENT_BEFORE
    view.curves, view.n_metrics = curve_rows(metrics), len(metrics)
    view.rollouts = [[r["step"], r["prompt"], r["completion"], round(float(r["reward"]), 3)]
                     for r in reversed(read_rollouts(rl.path, last_steps=1))]
    summary = status.get("summary") or {}
    view.watchouts = summary.get("watchouts") if status.get("state") == "done" else \
        rl_watchouts(metrics, samples=rl.read_samples())
    view.verdict = "\n\n".join(v for v in (view.verdict, summary.get("verdict")) if v)
    return view


def reward_model_choices(layout) -> list[tuple[str, str]]:
    """("label", value) for the reward-model picker: train a new one, or a finished reward run (newest first)."""
    from alignui.serving.reward_model import find_reward_models

    out = [("Train a new reward model first (same snapshot)", "new")]
    for path in find_reward_models(layout.root):
        report = read_json(path / "reward_eval.json", {}) or {}
        acc = f", held-out accuracy {report['accuracy']:.0%}" if report.get("n") else ""
        out.append((f"{path.name}{acc}", path.name))
    return out
