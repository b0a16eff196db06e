"""RLHF as one action: (optional SFT ->) reward model -> RL, queued on the app's JobRunner.

Owns: `start_rlhf`, which the Train tab calls once: it starts the stages as ordinary runs on the one
JobRunner (one job at a time, so they run in order), each later stage naming the earlier one by run id
(rl.reward_model = the reward run, rl.init_adapter = the SFT run), so every stage is a normal run in the
registry with its own lineage, log, cancel and resume. `plan_of` reads the stages back from the RL run's
config; `cancel_rlhf` cancels the stages still queued, then the running one.

Invariants:
- No thread and no state of its own: the queue order is the pipeline, and a later stage whose input did not
  finish fails at once with a message naming the stage to resume (alignui.serving.reward_model.resolve_reward_model,
  alignui.training.rlhf.resolve_adapter), never trains on a half-made model.
- Privileged: every start/cancel goes through the runner, which calls identity.require(identity, "train").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alignui.errors import ConflictError
from alignui.team.identity import Identity
from alignui.runs import RunDir


@dataclass(frozen=True)
class RLHFPlan:
    """Run ids of the stages of one RLHF pipeline (None: stage skipped or an existing model reused)."""

    rl: str
    reward: str | None = None
    sft: str | None = None

    @property
    def stages(self) -> list[tuple[str, str]]:
        """(label, run id) in execution order."""
        return [(label, rid) for label, rid in (("SFT", self.sft), ("reward model", self.reward), ("RL", self.rl))
                if rid]


def start_rlhf(runner, snapshot_id: str | None, rl_config, identity: Identity, *, reward_config=None,
               reward_model: str = "", sft_config=None) -> RLHFPlan:
    """Queue (SFT ->) reward model -> RL on `runner`. With `reward_model` (a finished reward run id) the reward
    stage is skipped; otherwise `reward_config` trains a new one from the same snapshot."""
    if not reward_model and reward_config is None:
        raise ValueError("start_rlhf needs reward_config (train a reward model) or reward_model (reuse one)")
    started: list[RunDir] = []
    try:
        sft = runner.start("sft", snapshot_id, sft_config, identity) if sft_config is not None else None
        started += [sft] if sft else []
        reward = runner.start("reward", snapshot_id, reward_config, identity) if not reward_model else None
        started += [reward] if reward else []
        updates = {"reward_model": reward.id if reward else reward_model,
                   "parent_run": (sft or reward).id if (sft or reward) else rl_config.parent_run}
        if sft is not None:
            updates["init_adapter"] = sft.id
        rl = runner.start("rlhf", snapshot_id, type(rl_config).from_mapping(updates, base=rl_config), identity)
    except Exception:
        for run in reversed(started):  # nothing half-queued: a refused later stage cancels the earlier ones
            try:
                runner.cancel(run.id, identity)
            except ConflictError:
                pass
        raise
    return RLHFPlan(rl=rl.id, reward=reward.id if reward else None, sft=sft.id if sft else None)


def plan_of(layout, rl_run_id: str) -> RLHFPlan:
    """The stages of the pipeline that produced RL run `rl_run_id` (read from its config)."""
    _, settings = RunDir.open(layout, rl_run_id).read_config()
    reward = str(settings.get("reward_model") or "").split(",")[0].strip() or None
    sft = str(settings.get("init_adapter") or "").strip() or None
    in_registry = lambda rid: rid if rid and not Path(rid).is_absolute() and (layout.runs_dir / rid).is_dir() \
        else None  # noqa: E731
    return RLHFPlan(rl=rl_run_id, reward=in_registry(reward), sft=in_registry(sft))


def cancel_rlhf(runner, plan: RLHFPlan, identity: Identity) -> list[str]:
    """Cancel every stage that has not ended, latest first (queued stages drop out before the running one)."""
    messages = []
    for _, run_id in reversed(plan.stages):
        state = RunDir.open(runner.layout, run_id).state
        if state in ("queued", "running"):
            try:
                messages.append(runner.cancel(run_id, identity))
            except ConflictError as exc:
                messages.append(str(exc))
    return messages


def start_rlhf_from_form(runner, snapshot_id: str | None, base_model: str, values: dict, identity: Identity, *,
                         reward_source: str = "new", reward_preset: str | None = None, sft_first: bool = False,
                         sft_preset: str | None = None) -> tuple[RLHFPlan, str]:
    """The Train tab's RLHF start: the RL settings from the form, the earlier stages from their presets (on the
    same base model); `reward_source` is 'new' (train one first) or a finished reward run id."""
    from alignui.training.config import build_config
    from alignui.training.methods import get_method
    from alignui.training.app.panel import config_from_form

    base = (base_model or "").strip()

    def from_preset(method: str, preset: str | None):
        m = get_method(method)
        return build_config(m.config_class(), config_file=m.presets_path if preset else None, preset=preset or None,
                            overrides={"base_model": base} if base else {})

    rl_config = config_from_form("rlhf", {**values, "base_model": base})
    reuse = "" if reward_source in ("", "new") else reward_source
    plan = start_rlhf(runner, snapshot_id or None, rl_config, identity, reward_model=reuse,
                      reward_config=None if reuse else from_preset("reward", reward_preset),
                      sft_config=from_preset("sft", sft_preset) if sft_first else None)
    chain = " → ".join(f"{label} `{rid}`" for label, rid in plan.stages)
    advice = "".join(f"\n- ⚠️ {w}" for w in rl_config.warnings())
    return plan, f"RLHF queued, one stage after the other: {chain}.{advice}"
