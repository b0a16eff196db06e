"""Judging an RLHF run: held-out base-vs-policy rewards, the RL watch-outs, and what is resident in memory.

Owns:
- `finish(...)`: the end of an RL run: the adapter saved, held-out prompts answered by the base (adapter
  disabled) and by the policy with the same seed, both scored by the reward model(s), samples.jsonl, the
  one-line verdict (mean reward base -> policy, policy win rate with a sign test) and the watch-outs.
- `rl_watchouts(metrics, rollouts, samples)`: the RL failure modes the seed warns about, raised when they
  show in the metrics: reward hacking (reward up while KL runs away or responses collapse), no learning
  signal (a prompt's samples all get the same reward), responses cut at max_new_tokens, a flat reward.
  Pure functions of the run's files, so the Train tab shows them live too.
- `residency(...)`: one line on which models are in memory and which weights they share.

Only `finish` and `residency` touch models (torch imported inside).
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean
from typing import Any

#: Mean per-token KL (TRL's `kl`, nats) above which a policy is far from its reference.
KL_HIGH = 0.5


def _series(metrics: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in metrics if isinstance(r.get(key), (int, float))]


def _ends(values: list[float], k: int = 3) -> tuple[float, float]:
    k = max(1, min(k, len(values) // 2))
    return mean(values[:k]), mean(values[-k:])


def read_rollouts(run_path: Path, last_steps: int | None = None) -> list[dict[str, Any]]:
    """Rollouts written during training (rollouts.jsonl), optionally only those of the last N logged steps."""
    from alignui.training.rlhf import ROLLOUTS_FILE

    try:
        lines = (Path(run_path) / ROLLOUTS_FILE).read_text().splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the line being written right now
    if last_steps:
        steps = sorted({r["step"] for r in rows})[-last_steps:]
        rows = [r for r in rows if r["step"] in steps]
    return rows


def rl_watchouts(metrics: list[dict[str, Any]], *, samples: list[dict[str, Any]] | None = None) -> list[str]:
    """The RL watch-outs that apply to this run so far (empty when all looks normal)."""
    from alignui.training.evaluation import degenerate_samples

    train = [r for r in metrics if "reward" in r and not any(k.startswith("eval_") for k in r)]
    out = []
    reward, kl = _series(train, "reward"), _series(train, "kl")
    length = _series(train, "completions/mean_length")
    if len(reward) >= 4:
        (r0, r1), reward_std = _ends(reward), max(_series(train, "reward_std") or [0.0])
        if abs(r1 - r0) < 0.05 * max(reward_std, 1e-6):
            out.append(f"mean reward is flat ({r0:+.3f} -> {r1:+.3f}): raise the learning rate, or check that the "
                       "reward model tells good from bad answers (its held-out accuracy)")
        if kl and kl[-1] > KL_HIGH and r1 > r0:
            out.append(f"KL to the reference is high ({kl[-1]:.2f} nats/token) while reward rises: the policy may be "
                       "gaming the reward model (reward hacking); read the rollouts, raise beta or lower the "
                       "learning rate")
    if len(length) >= 4:
        l0, l1 = _ends(length)
        if l1 < 0.5 * l0:
            out.append(f"responses got much shorter ({l0:.0f} -> {l1:.0f} tokens): the reward model may favour short "
                       "answers; read the rollouts for reward hacking")
    zero_std = _series(train, "frac_reward_zero_std")
    if len(zero_std) >= 3 and mean(zero_std[-3:]) > 0.5:
        out.append("most prompts' samples get identical rewards, so there is nothing to learn from: raise "
                   "temperature or num_generations")
    clipped = _series(train, "completions/clipped_ratio")
    if len(clipped) >= 3 and mean(clipped[-3:]) > 0.5:
        out.append("most responses are cut at max_new_tokens: raise it, or the policy learns from unfinished "
                   "answers")
    bad = degenerate_samples(samples or [])
    if bad:
        out.append(bad)
    return out


def residency(model, judges: list, base: str) -> str:
    """Which models are in memory and what they share (for the log, status.json and the Train tab)."""
    n = sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name)
    adapters = list(getattr(model, "peft_config", {}) or {})
    reference = ("a frozen copy of the starting adapter ('ref') on the same weights" if "ref" in adapters
                 else "the same weights with the adapter disabled")
    parts = [f"policy + reference share ONE copy of {Path(base).name} ({n / 1e6:.1f}M params): policy = base + "
             f"LoRA, reference = {reference}"]
    parts += [f"reward model {j.run_id} ({j.n_parameters / 1e6:.1f}M params, LoRA merged)" for j in judges]
    return f"{1 + len(judges)} model copies in memory: " + "; ".join(parts)


def score_samples(samples: list[dict[str, Any]], prompts: list[Any], judges: list) -> None:
    """Add reward_base / reward_adapter (summed over reward models) to each sample, in place."""
    for side in ("base", "adapter"):
        texts = [s[side] for s in samples]
        totals = [0.0] * len(samples)
        for judge in judges:
            totals = [t + r for t, r in zip(totals, judge.score_many(prompts, texts))]
        for s, total in zip(samples, totals):
            s[f"reward_{side}"] = round(total, 5)


def compare_rewards(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean rewards of base and policy, the policy's win rate, and an exact sign test (scipy)."""
    from scipy.stats import binomtest

    if not samples:
        return {"n": 0}
    wins = sum(s["reward_adapter"] > s["reward_base"] for s in samples)
    losses = sum(s["reward_adapter"] < s["reward_base"] for s in samples)
    p = binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue if wins + losses else 1.0
    return {"n": len(samples), "reward_base": mean(s["reward_base"] for s in samples),
            "reward_policy": mean(s["reward_adapter"] for s in samples), "wins": wins, "losses": losses,
            "win_rate": wins / len(samples), "p_value": float(p)}


def verdict(result: dict[str, Any]) -> str:
    if not result.get("n"):
        return "ℹ️ no held-out prompts, so no verdict: export with a test split (--test-size 0.1)"
    facts = (f"mean reward on {result['n']} held-out prompts {result['reward_base']:+.3f} (base) -> "
             f"{result['reward_policy']:+.3f} (policy); policy wins {result['wins']}, loses {result['losses']} "
             f"(sign test p={result['p_value']:.2g})")
    if result["reward_policy"] > result["reward_base"] and result["p_value"] < 0.05:
        return f"✅ the policy earns more reward than the base: {facts}"
    if result["reward_policy"] > result["reward_base"]:
        return f"⚠️ not clearly better than the base: {facts}; train longer or use more prompts"
    return f"❌ no gain over the base: {facts}; raise the learning rate or check the reward model"


def finish(job, trainer, tokenizer, data, judges: list, *, train_metrics: dict, moved: float,
           resident: str) -> dict[str, Any]:
    """Save the adapter, compare base and policy on held-out prompts, write the verdict; returns the summary."""
    from alignui.training.evaluation import sample_pairs
    from alignui.training.rlhf import distinct_prompts

    run, config = job.run, job.config
    run.update_status(phase="saving adapter")
    if "ref" in (getattr(trainer.model, "peft_config", None) or {}):
        trainer.model.delete_adapter("ref")  # the frozen reference copy is not part of the result
    trainer.save_model(str(run.adapter_dir))
    samples: list[dict[str, Any]] = []
    test = data["test"] if "test" in data and len(data["test"]) else None
    if config.eval_prompts and test is not None:
        run.update_status(phase="evaluating")
        held = distinct_prompts(list(test["prompt"]), tokenizer, config.max_prompt_length,
                                log=job.log)[:config.eval_prompts]
        samples = sample_pairs(trainer.model, tokenizer, held, max_new_tokens=config.max_new_tokens,
                               seed=config.seed)
        score_samples(samples, held, judges)
        run.samples_path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    result = compare_rewards(samples)
    line = verdict(result)
    notes = rl_watchouts(run.read_metrics(), samples=samples)
    for text in [line, *notes]:
        job.log(text)
    keep = ("train_loss", "train_runtime", "train_steps_per_second", "train_samples_per_second")
    return {"adapter": str(run.adapter_dir), "steps": trainer.state.global_step, "params_moved": moved,
            "train": {k: train_metrics[k] for k in keep if k in train_metrics}, "eval": result,
            "reward_models": [j.run_id for j in judges], "resident": resident, "verdict": line,
            "watchouts": notes}
