"""Memory and speed settings taken from the ecosystem for the preference methods (DPO, KTO, ORPO, SimPO).

Owns: `KernelSettings` (a dataclass mixin: use_liger_kernel), `trl_arguments(config)` (what it hands to the TRL
config), and `check(report, config, setup)`: the pre-flight lines that say what use_liger_kernel,
precompute_ref_log_probs and gradient checkpointing change, and the refusals (Liger without liger-kernel or
without CUDA).

What the installed trl (1.16) offers, and what alignui exposes (tests/training/test_train_speedups.py checks the
field names on the TRL config classes):
- use_liger_kernel: all four. transformers' Trainer patches the model with Liger's Triton kernels (RMSNorm, RoPE,
  SwiGLU, ...). DPO and KTO keep TRL's own chunked LM head for the log-probs (TRL turns Liger's fused linear
  cross-entropy off for them), so Liger's "up to 80% less memory" for preference losses, which comes from that
  fused loss, does not apply in TRL 1.16: the pre-flight estimate is NOT adjusted for Liger; bench/dpo_overhead.py
  --gpu measures what the layer kernels save.
- precompute_ref_log_probs: DPO and KTO, the methods with a reference pass (their own configs).
- gradient_checkpointing: TrainConfig's, every method (empty = on for GPU).
- padding_free: not exposed. trl 1.16's DPOTrainer turns it off with a warning ("temporarily unavailable after a
  refactor") and KTO/ORPO/CPO have no such option, so a setting would promise what TRL does not do.

Invariants: liger_kernel is never imported here (find_spec only); use_liger_kernel=false hands TRL its default.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from alignui.training.config import knob

LIGER_INSTALL = "pip install liger-kernel (it needs triton, which CUDA builds of torch bring)"
GIB = 1024 ** 3


@dataclass(frozen=True)
class KernelSettings:
    """Liger kernels (TRL/transformers' use_liger_kernel); a mixin placed before TrainConfig in a config's bases."""

    use_liger_kernel: bool = knob(False, group="memory", help="Liger's fused Triton kernels (RMSNorm, RoPE, SwiGLU) "
                                  "in place of the model's own: less activation memory and faster steps, the same "
                                  "maths; CUDA GPU only, needs " + LIGER_INSTALL)


def trl_arguments(config: Any) -> dict[str, Any]:
    """The TRL config keyword arguments of the mixin's settings (trl 1.16 / transformers names)."""
    return {"use_liger_kernel": True} if getattr(config, "use_liger_kernel", False) else {}


def liger_installed() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def check(report, config, setup) -> None:
    """Pre-flight: refusals for Liger where it cannot run; a line per memory/speed trade the run makes."""
    if getattr(config, "use_liger_kernel", False):
        if not liger_installed():
            report.refusals.append(f"use_liger_kernel needs liger-kernel, which is not installed here: {LIGER_INSTALL}")
        if setup.device != "cuda":
            report.refusals.append(f"use_liger_kernel needs a CUDA GPU (Liger's kernels are Triton), this job runs "
                                   f"on {setup.device}: set use_liger_kernel=false")
        report.tradeoffs.append("Liger kernels: RMSNorm, RoPE and SwiGLU run fused (less activation memory, faster "
                                "steps); the memory estimate is not lowered for them (TRL 1.16 keeps its own "
                                "chunked log-prob head, so Liger's fused-loss saving does not apply; "
                                "bench/dpo_overhead.py --gpu measures the rest)")
    if getattr(config, "precompute_ref_log_probs", False):
        report.tradeoffs.append(f"precomputed reference log-probs: one no-grad pass over the {report.rows} training "
                                "rows before step 1, then no reference forward per step (the estimate counts none); "
                                "pays off after about one epoch, and the reference can no longer change mid-run")
    parts = report.memory_parts
    if setup.gradient_checkpointing:
        kept = f" (estimated {parts['activations'] / GIB:.2f} GiB)" if "activations" in parts else ""
        report.tradeoffs.append(f"gradient checkpointing on: activations are kept for one layer plus each layer's "
                                f"input{kept} instead of every layer's (Korthikanti et al. 2022's per-layer count), "
                                "and the backward recomputes each layer: about one more forward per step (~30% "
                                "slower)")
    elif setup.device == "cuda":
        report.tradeoffs.append("gradient checkpointing off: every layer's activations stay in memory (faster "
                                "steps; turn it on if the estimate is close to the free memory)")
