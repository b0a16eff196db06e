"""What the Train tab shows and asks, as plain data: the settings form, a run's live view, the runs table.

Owns:
- `form_fields(methods)`: one FieldSpec per setting of every available method's config class (the form is
  generated from the dataclass fields and their help/guide metadata, so a new method's knobs appear with no
  UI code), and which methods each field belongs to.
- `preset_values` / `config_from_form`: preset -> widget values, widget values -> a validated config.
- `run_view(run, ...)`: status line, progress, the curves (loss; reward accuracy; margin with chosen and
  rejected rewards), watch-outs computed live, log tail, verdict and samples.
- `runs_frame(store)`: the Runs table.

No gradio, no torch: the UI module formats these; tests call them directly.
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, dataclass, fields
from typing import Any

from alignui.training.config import TrainConfig, build_config
from alignui.training.evaluation import watchouts
from alignui.training.methods import Method, get_method
from alignui.runs import format_eta
from alignui.runs import RunDir, read_json

#: Settings shown open at the top of the form (the seed's key knobs); the rest sit in "More settings".
KEY_FIELDS = ("beta", "learning_rate", "num_train_epochs", "max_steps", "max_length", "max_prompt_length",
              "loss_type", "label_smoothing", "lora_r", "lora_alpha", "lora_target_modules",
              "per_device_train_batch_size", "gradient_accumulation_steps", "gradient_checkpointing",
              "precompute_ref_log_probs", "save_steps", "num_processes",
              # RLHF's own knobs (reward_model has its own picker in the RLHF panel)
              "algorithm", "num_generations", "max_new_tokens", "temperature")
HIDDEN_FIELDS = ("base_model",)  # has its own widget next to the snapshot


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # "bool", "tristate" (bool or None = auto), "int", "float", "text", "choice"
    default: Any
    help: str
    guide: str | None
    choices: tuple | None
    group: str
    optional: bool
    methods: tuple[str, ...]

    @property
    def key(self) -> bool:
        return self.name in KEY_FIELDS

    @property
    def info(self) -> str:
        return f"{self.guide} · {self.help}" if self.guide else self.help


def _kind(hint) -> tuple[str, bool]:
    args = [a for a in (typing.get_args(hint) or (hint,)) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    base = args[0]
    if base is bool:
        return ("tristate" if optional else "bool"), optional
    return {int: "int", float: "float"}.get(base, "text"), optional


def form_fields(methods: list[Method]) -> list[FieldSpec]:
    """Fields of every method's config, in declaration order, each tagged with the methods that have it."""
    specs: dict[str, dict] = {}
    for method in methods:
        cls = method.config_class()
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name in HIDDEN_FIELDS:
                continue
            if f.name in specs:
                specs[f.name]["methods"] += (method.name,)
                continue
            kind, optional = _kind(hints[f.name])
            meta = f.metadata
            kind = "choice" if meta.get("choices") else kind
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            specs[f.name] = dict(name=f.name, kind=kind, default=default, help=meta.get("help", ""),
                                 guide=meta.get("guide"), choices=meta.get("choices"), group=meta.get("group", ""),
                                 optional=optional, methods=(method.name,))
    return [FieldSpec(**s) for s in specs.values()]


def method_about(method_name: str) -> str:
    """One line under the Method dropdown: what the method trains on and when to prefer it."""
    method = get_method(method_name)
    return f"**{method.label}**: {method.help}" if method.help else ""


def preset_values(method_name: str, preset: str | None) -> dict[str, Any]:
    """Every setting of `method_name` as the preset sets it (class defaults where it is silent)."""
    method = get_method(method_name)
    cls = method.config_class()
    config = build_config(cls, config_file=method.presets_path, preset=preset) if preset else cls()
    return config.to_dict()


def config_from_form(method_name: str, values: dict[str, Any]) -> TrainConfig:
    """The method's config from widget values (only the method's own fields; empty means 'none'/'auto')."""
    cls = get_method(method_name).config_class()
    own = {f.name for f in fields(cls)}
    cleaned = {}
    for name, value in values.items():
        if name not in own:
            continue
        if value == "auto":
            value = None
        cleaned[name] = value
    return cls.from_mapping(cleaned)


# -- the live view ----------------------------------------------------------------------------------------
#: plot -> ((metric, series label), ...). DPO logs rewards/*; TRL's RewardTrainer logs accuracy and margin
#: (its pairs' chosen-minus-rejected score), so a reward-model run fills the same two plots.
CURVES = {"loss": (("loss", "train loss"), ("eval_loss", "held-out loss")),
          "accuracy": (("rewards/accuracies", "train reward accuracy"),
                       ("eval_rewards/accuracies", "held-out reward accuracy"),
                       ("accuracy", "train accuracy (reward model)"),
                       ("eval_accuracy", "held-out accuracy (reward model)")),
          "rewards": (("rewards/margins", "margin"), ("rewards/chosen", "chosen reward"),
                      ("rewards/rejected", "rejected reward"), ("margin", "train margin (reward model)"),
                      ("eval_margin", "held-out margin (reward model)"))}


@dataclass
class RunView:
    run_id: str
    state: str
    headline: str
    fraction: float
    curves: dict[str, list[dict[str, Any]]]
    n_metrics: int
    watchouts: list[str]
    log_tail: str
    verdict: str | None
    samples: list[dict[str, Any]]
    can_cancel: bool
    can_resume: bool
    adapter: str | None


def curve_rows(metrics: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Long-format rows (step, value, series) per plot, from metrics.jsonl records."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in CURVES}
    for record in metrics:
        for plot, series in CURVES.items():
            for key, label in series:
                value = record.get(key)
                if isinstance(value, (int, float)):
                    out[plot].append({"step": int(record.get("step", 0)), "value": float(value), "series": label})
    return out


def _live_watchouts(run: RunDir, metrics, samples, preflight) -> list[str]:
    """The watch-outs of the run's own method: an RL loss sits near zero by design, so DPO's "loss is not
    moving" would be a false alarm there; RL runs get the RL watch-outs (flat reward, KL, length collapse)."""
    method, _ = run.read_config()
    if method == "rlhf":
        from alignui.training.rlhf_eval import rl_watchouts

        return rl_watchouts(metrics, samples=samples)
    return watchouts(metrics, samples=samples, preflight=preflight)


def run_view(run: RunDir, *, cancelling: bool = False, queued_behind: str | None = None) -> RunView:
    """Everything the live view shows for one run, read from its directory."""
    status, metrics = run.read_status(), run.read_metrics()
    state = status.get("state", "unknown")
    step, total = int(status.get("step") or 0), int(status.get("max_steps") or 0)
    phase = "stopping (saving a checkpoint)…" if cancelling else status.get("phase", "")
    parts = [f"**{run.id}** · {state}", phase]
    if total:
        parts.append(f"step {step}/{total}")
    if state == "running" and status.get("eta_s") is not None:
        parts.append(f"ETA {format_eta(status.get('eta_s'))}")
    if queued_behind:
        parts.append(f"waits for {queued_behind}")
    summary = status.get("summary") or {}
    preflight = read_json(run.preflight_path, None)
    samples = run.read_samples()
    notes = summary.get("watchouts") if state == "done" else _live_watchouts(run, metrics, samples, preflight)
    if status.get("error"):
        notes = [f"error: {status['error']}", *(notes or [])]
    return RunView(run_id=run.id, state=state, headline=" · ".join(p for p in parts if p),
                   fraction=1.0 if state == "done" else (step / total if total else 0.0),
                   curves=curve_rows(metrics), n_metrics=len(metrics), watchouts=list(notes or []),
                   log_tail=run.log_tail(12), verdict=summary.get("verdict"), samples=samples,
                   can_cancel=state in ("queued", "running") and not cancelling,
                   can_resume=state in ("failed", "cancelled"),
                   adapter=str(run.adapter_dir) if state == "done" and run.has_adapter else None)


RUN_COLUMNS = ("run", "method", "lineage", "status", "snapshot", "base model", "step", "held-out acc", "margin",
               "verdict", "adapter", "created")


def runs_rows(runs) -> list[list[Any]]:
    """Rows of the Runs table from Store.list_runs() (newest first)."""
    from alignui.runs import lineage_label

    rows, runs = [], list(runs)
    for r in runs:
        ev = (r.metrics or {}).get("eval") or {}
        acc, margin = ev.get("eval_rewards/accuracies"), ev.get("eval_rewards/margins")
        verdict = (r.metrics or {}).get("verdict") or (r.error or "")
        step = (r.metrics or {}).get("step")
        rows.append([r.id, r.method, lineage_label(r.id, runs), r.status, r.snapshot_id or "", r.base_model or "",
                     "" if step is None else f"{step}/{(r.metrics or {}).get('max_steps') or '?'}",
                     "" if acc is None else f"{acc:.0%}", "" if margin is None else f"{margin:+.3f}",
                     verdict.splitlines()[0][:90] if verdict else "", "✅ in arena" if r.adapter_path else "",
                     f"{r.created_at:%Y-%m-%d %H:%M}" if r.created_at else ""])
    return rows


# -- actions (one call per UI callback) -----------------------------------------------------------------------
def _form_config(method: str, base_model: str, values: dict[str, Any]) -> TrainConfig:
    return config_from_form(method, {**values, "base_model": (base_model or "").strip()})


def preflight_from_form(storage, method: str, snapshot_id: str | None, base_model: str,
                        values: dict[str, Any]) -> str:
    """The pre-flight report (markdown) for the form as filled in; nothing is started."""
    from alignui.data.snapshot import resolve_snapshot
    from alignui.training.preflight import check

    config = _form_config(method, base_model, values)
    report, _, _ = check(config, storage, resolve_snapshot(storage, snapshot_id or None, allow_paths=False),
                         log=lambda line: None)
    return report.markdown()


def start_from_form(runner, method: str, snapshot_id: str | None, base_model: str, values: dict[str, Any],
                    identity) -> tuple[RunDir, str]:
    """Validate the form, pre-flight, and start (or queue) the run; returns (run, message)."""
    config = _form_config(method, base_model, values)
    run = runner.start(method, snapshot_id or None, config, identity)
    waiting = runner.queued()
    note = f"queued: it starts when {runner.active_run()} ends" if run.id in waiting else "started"
    advice = "".join(f"\n- ⚠️ {w}" for w in config.warnings())
    return run, f"Run `{run.id}` {note}.{advice}"
