"""Judging a run: the one-line verdict, the seed's watch-outs, and base-vs-adapter samples.

Owns:
- `verdict(eval_metrics, n)`: held-out implicit-reward accuracy against chance (an exact binomial test,
  scipy) and the mean margin, in one line a user can act on.
- `watchouts(metrics, samples, preflight)`: the seed's warnings, raised when they happen: loss not moving,
  chosen reward falling while the margin grows (a common source of confusion), training accuracy stuck at
  chance, every pair truncated, and degenerate samples (repetitive or never-ending: halve the learning rate
  or raise beta). Pure functions of the run's files, so the Train tab shows them live too.
- `sample_pairs(...)`: a few held-out prompts answered by the base (adapters disabled) and by the adapter,
  with the same seed, written to samples.jsonl.

The metric names are TRL's (alignui.training.metrics). Only `sample_pairs` touches torch (imported inside).
"""

from __future__ import annotations

from statistics import mean
from typing import Any

#: DPO's loss at the start (policy == reference): -log sigmoid(0) = ln 2.
LOSS_FLAT = 0.005


def _series(metrics: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in metrics if isinstance(r.get(key), (int, float))]


def _ends(values: list[float], k: int = 3) -> tuple[float, float]:
    return mean(values[:k]), mean(values[-k:])


def verdict(eval_metrics: dict[str, Any] | None, n_pairs: int, *, train_accuracy: float | None = None) -> str:
    """One line on whether the adapter learned the preference, judged on the held-out test split."""
    if not eval_metrics or n_pairs == 0 or "eval_rewards/accuracies" not in eval_metrics:
        extra = f" (last training reward accuracy {train_accuracy:.0%})" if train_accuracy is not None else ""
        return f"ℹ️ no held-out test split, so no verdict{extra}: export with a test split (--test-size 0.1)"
    from scipy.stats import binomtest

    acc = float(eval_metrics["eval_rewards/accuracies"])
    margin = float(eval_metrics.get("eval_rewards/margins", 0.0))
    wins = round(acc * n_pairs)
    p = binomtest(wins, n_pairs, 0.5, alternative="greater").pvalue
    facts = (f"held-out reward accuracy {acc:.0%} on {n_pairs} unseen pairs (chance 50%, p={p:.2g}), "
             f"margin {margin:+.3f}")
    if acc > 0.5 and p < 0.05 and margin > 0:
        return f"✅ learned the preference: {facts}"
    if acc > 0.5:
        return f"⚠️ not clearly above chance: {facts}; collect more pairs or train longer"
    return (f"❌ no better than chance: {facts}; check that chosen and rejected differ consistently, "
            "or raise the learning rate / train longer")


def repetition(text: str, n: int = 3) -> float:
    """Share of repeated word n-grams (0 = none repeat, near 1 = a loop)."""
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if len(grams) >= 2 else 0.0


def degenerate_samples(samples: list[dict[str, Any]]) -> str | None:
    """A warning when the adapter's samples loop or never finish much more often than the base's."""
    if not samples:
        return None
    rep = {side: mean(repetition(s[side]) for s in samples) for side in ("base", "adapter")}
    open_ = {side: mean(0.0 if s.get(f"{side}_finished", True) else 1.0 for s in samples)
             for side in ("base", "adapter")}
    if rep["adapter"] > 0.35 and rep["adapter"] > rep["base"] + 0.15:
        why = f"repetitive ({rep['adapter']:.0%} repeated 3-grams vs {rep['base']:.0%} for the base)"
    elif open_["adapter"] >= open_["base"] + 0.34:
        why = f"never-ending ({open_['adapter']:.0%} hit the length limit vs {open_['base']:.0%} for the base)"
    else:
        return None
    return f"samples look degenerate, {why}: halve the learning rate or raise beta, then train again"


def watchouts(metrics: list[dict[str, Any]], *, samples: list[dict[str, Any]] | None = None,
              preflight: dict[str, Any] | None = None) -> list[str]:
    """The seed's watch-outs that apply to this run so far (empty when all looks normal)."""
    train = [r for r in metrics if "loss" in r and not any(k.startswith("eval_") for k in r)]
    out = []
    loss = _series(train, "loss")
    if len(loss) >= 10 and abs(_ends(loss)[0] - _ends(loss)[1]) < LOSS_FLAT:
        out.append("loss is not moving: raise the learning rate (x3), check that LoRA targets the model's "
                   "linear layers, and that chosen and rejected really differ")
    chosen, margin = _series(train, "rewards/chosen"), _series(train, "rewards/margins")
    if len(chosen) >= 6 and len(margin) >= 6:
        (c0, c1), (m0, m1) = _ends(chosen), _ends(margin)
        if c1 < c0 - 0.01 and m1 > m0 + 0.01:
            out.append(f"chosen reward is falling ({c0:+.3f} -> {c1:+.3f}) while the margin grows ({m0:+.3f} -> "
                       f"{m1:+.3f}): training pushes rejected answers down faster than chosen ones. Common and often "
                       "fine; if samples degrade, raise beta or lower the learning rate")
    acc = _series(train, "rewards/accuracies")
    if len(acc) >= 20 and _ends(acc, 5)[1] <= 0.55:
        out.append("training reward accuracy stays near chance: the pairs may be noisy or contradictory, or the "
                   "learning rate too low")
    if preflight and preflight.get("measured_rows") and preflight.get("truncated", 0) >= preflight["measured_rows"]:
        out.append("every pair is truncated at max_length: the model never sees how responses end")
    bad = degenerate_samples(samples or [])
    if bad:
        out.append(bad)
    return out


def sample_pairs(model, tokenizer, prompts: list[Any], *, max_new_tokens: int, seed: int,
                 batch_size: int = 8) -> list[dict[str, Any]]:
    """Answers to `prompts` from the base (adapters disabled) and from the adapter, same seed for both."""
    import torch

    was_training = model.training
    model.eval()
    out = [{"prompt": p if isinstance(p, str) else p[-1]["content"]} for p in prompts]
    end_id = tokenizer.eos_token_id
    for side in ("base", "adapter"):
        torch.manual_seed(seed)
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start:start + batch_size]
            messages = [[{"role": "user", "content": p}] if isinstance(p, str) else p for p in chunk]
            enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                padding=True, return_dict=True).to(model.device)
            with torch.no_grad():
                if side == "base":
                    with model.disable_adapter():
                        ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True, use_cache=True)
                else:
                    ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True, use_cache=True)
            new = ids[:, enc["input_ids"].shape[1]:]
            for i, row in enumerate(new.tolist()):
                out[start + i][side] = tokenizer.decode(row, skip_special_tokens=True).strip()
                out[start + i][f"{side}_finished"] = end_id in row
    model.train(was_training)
    return out
