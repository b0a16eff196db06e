"""The presets plan of bench/dpo_overhead.py (its --gpu run): alignui's gpu-fast DPO preset against TRL's defaults,
Liger on/off, LoRA and QLoRA with/without precomputed reference log-probs, side by side in one run.

Each run is one subprocess on the same model, data, seed and schedule (bench/dpo_overhead.py's run_alignui /
run_plain); a run whose package is missing here (liger-kernel, bitsandbytes) is skipped and the report says why.
Every comparison gives the ratios of tokens/s (TRL's num_tokens over the training loop's runtime), of peak GPU
memory and of the whole command's wall time (which includes the precompute pass: TRL runs it before the loop),
and the two loss curves' largest step-by-step gap beside the noise floor (the gap between alignui and plain TRL on
identical settings). The issue's target for gpu_fast_vs_trl_defaults: >= 1.3x tokens/s at <= 0.6x peak memory.

    python bench/dpo_overhead.py --gpu                                  # this plan on CUDA, 0.5B-class model
    python bench/dpo_overhead.py --plan presets --model-size tiny --steps 2   # the same plan, small, on CPU
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from alignui.training.config import CONFIGS_DIR, settings_from_file

#: What configs/dpo.yaml's gpu-fast preset trades, read from the preset itself (the bench measures that file).
TRADES = ("use_liger_kernel", "precompute_ref_log_probs", "gradient_checkpointing")


def preset_trades() -> dict:
    preset = settings_from_file(CONFIGS_DIR / "dpo.yaml", "gpu-fast")
    return {k: preset[k] for k in TRADES if k in preset}


def runs() -> dict[str, tuple[str, dict]]:
    """name -> (runner, settings on top of the shared ones). The shared settings are TRL's DPOConfig defaults for
    the trades (gradient checkpointing on, no Liger, no precompute)."""
    return {"trl-defaults": ("plain", {}),
            "alignui-gpu-fast": ("alignui", preset_trades()),
            "alignui-lora": ("alignui", {}),
            "alignui-lora+liger": ("alignui", {"use_liger_kernel": True}),
            "alignui-lora+precompute": ("alignui", {"precompute_ref_log_probs": True}),
            "alignui-qlora": ("alignui", {"load_in_4bit": True}),
            "alignui-qlora+precompute": ("alignui", {"load_in_4bit": True, "precompute_ref_log_probs": True})}


COMPARISONS = {"gpu_fast_vs_trl_defaults": ("alignui-gpu-fast", "trl-defaults"),
               "liger_on_vs_off": ("alignui-lora+liger", "alignui-lora"),
               "lora_precompute_vs_not": ("alignui-lora+precompute", "alignui-lora"),
               "qlora_precompute_vs_not": ("alignui-qlora+precompute", "alignui-qlora"),
               "alignui_vs_plain_trl": ("alignui-lora", "trl-defaults")}
NOISE = "alignui_vs_plain_trl"  # identical settings: its loss gap is the noise floor
TARGET = {"tokens_per_second_ratio": 1.3, "peak_memory_ratio": 0.6}


def missing_package(settings: dict, device: str) -> str | None:
    """Why a run cannot happen on this machine, or None."""
    if settings.get("use_liger_kernel"):
        if importlib.util.find_spec("liger_kernel") is None:
            return "liger-kernel is not installed (wheels/: liger_kernel-*.whl)"
        if device != "cuda":
            return "Liger kernels need CUDA"
    if settings.get("load_in_4bit"):
        if importlib.util.find_spec("bitsandbytes") is None:
            return "bitsandbytes is not installed (the optional wheels/qlora set)"
        if device != "cuda":
            return "4-bit loading needs CUDA"
    return None


def run_all(storage: Path, model: Path, shared: dict, run_alignui, run_plain, log=print,
            on_result=lambda results: None) -> dict[str, dict]:
    """Every run of the plan (skipped or failed ones say why), in a fixed order; `on_result(results so far)` after
    each (the bench prints them, so a run stopped at its time limit still leaves its finished runs' numbers)."""
    out: dict[str, dict] = {}
    for name, (runner, changes) in runs().items():
        on_result(out)
        settings = {**shared, "gradient_checkpointing": True, **changes}
        reason = missing_package(settings, shared["device"])
        if reason:
            out[name] = {"skipped": reason}
            log(f"  {name}: skipped, {reason}")
            continue
        started = time.monotonic()
        try:
            result = (run_alignui if runner == "alignui" else run_plain)(storage, model, settings)
        except SystemExit as exc:  # _run's one-line failure (+ stderr tail)
            out[name] = {"failed": str(exc)[-1500:]}
            log(f"  {name}: FAILED {str(exc).splitlines()[0]}")
            continue
        result["wall_seconds"] = time.monotonic() - started
        out[name] = result
        log(f"  {name}: {_fmt(result.get('tokens_per_second'), '.0f')} tokens/s, peak "
            f"{_fmt(result.get('peak_gpu_memory_gb'), '.2f')} GiB, wall {result['wall_seconds']:.0f} s")
    return out


def loss_gap(a: list[float], b: list[float]) -> float | None:
    n = min(len(a), len(b))
    return max(abs(x - y) for x, y in zip(a[:n], b[:n])) if n else None


def ratio(a, b):
    return a / b if a is not None and b else None


def compare(results: dict[str, dict]) -> dict[str, dict]:
    """The side-by-side ratios for each comparison whose two runs both ran."""
    out: dict[str, dict] = {}
    for name, (a, b) in COMPARISONS.items():
        ra, rb = results.get(a, {}), results.get(b, {})
        why = next((f"{x}: {r.get('skipped') or 'failed'}" for x, r in ((a, ra), (b, rb))
                    if "skipped" in r or "failed" in r or not r), None)
        if why:
            out[name] = {"runs": [a, b], "skipped": why}
            continue
        out[name] = {"runs": [a, b],
                     "tokens_per_second_ratio": ratio(ra.get("tokens_per_second"), rb.get("tokens_per_second")),
                     "peak_memory_ratio": ratio(ra.get("peak_gpu_memory_gb"), rb.get("peak_gpu_memory_gb")),
                     "wall_time_ratio": ratio(ra["wall_seconds"], rb["wall_seconds"]),
                     "loss_max_gap": loss_gap(ra.get("losses", []), rb.get("losses", [])),
                     "final_loss": [(ra.get("losses") or [None])[-1], (rb.get("losses") or [None])[-1]]}
    noise = out.get(NOISE, {}).get("loss_max_gap")
    for row in out.values():
        row["loss_noise_floor"] = noise
    fast = out.get("gpu_fast_vs_trl_defaults", {})
    if "skipped" not in fast and fast.get("peak_memory_ratio") is not None:
        fast["meets_target"] = (fast["tokens_per_second_ratio"] >= TARGET["tokens_per_second_ratio"]
                                and fast["peak_memory_ratio"] <= TARGET["peak_memory_ratio"])
    return out


def print_table(comparisons: dict[str, dict]) -> None:
    print("\n| comparison | runs (a vs b) | tokens/s a/b | peak memory a/b | wall time a/b | loss max gap "
          "(noise floor) |")
    print("|---|---|---|---|---|---|")
    for name, r in comparisons.items():
        if "skipped" in r:
            print(f"| {name} | {' vs '.join(r['runs'])} | skipped: {r['skipped']} | | | |")
            continue
        print(f"| {name} | {' vs '.join(r['runs'])} | {_fmt(r['tokens_per_second_ratio'], '.3f')} | "
              f"{_fmt(r['peak_memory_ratio'], '.3f')} | {_fmt(r['wall_time_ratio'], '.3f')} | "
              f"{_fmt(r['loss_max_gap'], '.4f')} ({_fmt(r['loss_noise_floor'], '.4f')}) |")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)
