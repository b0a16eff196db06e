"""DPO overhead: `python -m alignui train dpo` vs a plain TRL DPOTrainer script, side by side in one run.

Both run as subprocesses with the same model, data and settings (LoRA, the device's dtype, reference = base
with adapters disabled), alternating order round by round (ABBA). Steps/s is TRL's own train_steps_per_second
(the `trainer.train()` call only), so the comparison isolates what alignui adds to the training loop: its
metrics/status callback, the stop flag, prompt-end truncation and the dtype guard.

    python bench/dpo_overhead.py                  # CPU: the demo model (target ratio >= 0.97)
    python bench/dpo_overhead.py --gpu            # CUDA, a 0.5B-class random-init Llama: the presets plan
                                                  # (bench/dpo_gpu.py): the gpu-fast preset vs TRL's defaults,
                                                  # Liger on/off, LoRA/QLoRA +/- precomputed reference log-probs;
                                                  # tokens/s, peak GPU memory, loss curves
    python bench/dpo_overhead.py --plan presets --model-size tiny --steps 2   # that plan, small, on CPU
    python bench/dpo_overhead.py --model-size tiny --variants lora,lora+precompute   # the overhead plan, small
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alignui.serving import demo_corpus
from alignui.serving.demo_model import ensure_demo_model, is_built  # noqa: E402
from alignui.training.synthetic import closer_pairs, split_prompts, write_snapshot  # noqa: E402

#: Qwen2.5-0.5B's shape as a random-init Llama (494M parameters with its 151,936-token vocabulary).
SIZES = {"0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                      num_key_value_heads=2, vocab_size=151936),
         "tiny": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=4, vocab_size=1024)}
VARIANTS = {"lora": {}, "lora+precompute": {"precompute_ref_log_probs": True},
            "qlora": {"load_in_4bit": True}, "qlora+precompute": {"load_in_4bit": True,
                                                                  "precompute_ref_log_probs": True}}


def build_model(out: Path, size: str, tokenizer_dir: Path) -> Path:
    """A random-init Llama of `size` with the demo tokenizer (a larger vocabulary than the tokenizer is fine)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    spec = dict(SIZES[size])
    spec["vocab_size"] = max(spec["vocab_size"], len(tokenizer))
    config = LlamaConfig(**spec, max_position_embeddings=2048, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    print(f"built a random-init {size} model: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M params")
    return out


def long_pairs(n: int, answers_per_side: int, rng: random.Random) -> list[dict]:
    """Closer pairs whose responses chain several corpus answers (longer sequences for the GPU runs)."""
    train, _ = split_prompts(rng, 0)
    rows = []
    for _ in range(n):
        question, entity = rng.choice(train)
        body = " ".join(demo_corpus.answer(question, entity, rng) for _ in range(answers_per_side))
        body = body.replace(" " + demo_corpus.POLITE_CLOSER, "")
        rows.append({"prompt": [{"role": "user", "content": question}],
                     "chosen": [{"role": "assistant", "content": f"{body} {demo_corpus.POLITE_CLOSER}"}],
                     "rejected": [{"role": "assistant", "content": body}]})
    return rows


def run_alignui(storage: Path, model: Path, settings: dict) -> dict:
    sets = {"base_model": str(model), "device": settings["device"], "cpu_threads": settings.get("cpu_threads", 0),
            "learning_rate": settings["learning_rate"], "max_steps": settings["max_steps"],
            "per_device_train_batch_size": settings["batch_size"], "gradient_accumulation_steps": 1,
            "max_length": settings["max_length"], "max_prompt_length": "none", "lora_r": settings["lora_r"],
            "lora_alpha": 2 * settings["lora_r"], "lora_dropout": 0.0, "beta": settings["beta"],
            "gradient_checkpointing": settings["gradient_checkpointing"], "logging_steps": 1,
            "save_steps": settings["max_steps"], "sample_prompts": 0, "warmup_ratio": 0.1,
            "load_in_4bit": settings.get("load_in_4bit", False),
            "precompute_ref_log_probs": settings.get("precompute_ref_log_probs", False),
            "use_liger_kernel": settings.get("use_liger_kernel", False)}
    cmd = [sys.executable, "-m", "alignui", "train", "dpo", "--storage", str(storage), "--snapshot", "dpo-bench"]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    out = _run(cmd)
    summary = json.loads(out.strip().splitlines()[-1])
    train = summary["train"]
    metrics = [json.loads(line) for line in (Path(summary["path"]) / "metrics.jsonl").read_text().splitlines()]
    tokens = max((m.get("num_tokens", 0) for m in metrics), default=0)
    return {"train_steps_per_second": train["train_steps_per_second"], "train_runtime": train["train_runtime"],
            "cpu_steps_per_second": summary["steps"] / train["train_cpu_seconds"],
            "tokens_per_second": tokens / train["train_runtime"], "peak_gpu_memory_gb": train.get("peak_gpu_memory_gb"),
            "losses": [m["loss"] for m in metrics if "loss" in m]}


def run_plain(storage: Path, model: Path, settings: dict) -> dict:
    out_dir = tempfile.mkdtemp(prefix="plain-dpo-", dir=storage)
    cmd = [sys.executable, str(REPO / "bench" / "plain_trl_dpo.py"), "--model", str(model), "--snapshot",
           str(storage / "snapshots" / "dpo-bench"), "--settings", json.dumps(settings), "--out", out_dir]
    result = json.loads(_run(cmd).strip().splitlines()[-1])
    shutil.rmtree(out_dir, ignore_errors=True)
    return result


def _run(cmd: list[str]) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(cmd[:6])} ...\n{done.stderr[-3000:]}")
    return done.stdout


def compare(storage: Path, model: Path, settings: dict, rounds: int) -> dict:
    """ABBA-ordered rounds of both runners; medians and the ratio alignui / plain."""
    results: dict[str, list[dict]] = {"alignui": [], "plain": []}
    for r in range(rounds):
        order = ("alignui", "plain") if r % 2 == 0 else ("plain", "alignui")
        for who in order:
            runner = run_alignui if who == "alignui" else run_plain
            results[who].append(runner(storage, model, settings))
            last = results[who][-1]
            print(f"  round {r + 1} {who:8s} {last['train_steps_per_second']:.3f} steps/s, "
                  f"{last['cpu_steps_per_second']:.3f} steps per CPU-second", flush=True)
    med = {who: {k: statistics.median(x[k] for x in rs if x.get(k) is not None) if any(x.get(k) is not None
                                                                                        for x in rs) else None
                 for k in ("train_steps_per_second", "cpu_steps_per_second", "tokens_per_second",
                           "peak_gpu_memory_gb")}
           for who, rs in results.items()}
    ratios = [a["train_steps_per_second"] / p["train_steps_per_second"]
              for a, p in zip(results["alignui"], results["plain"])]
    return {"alignui": med["alignui"], "plain": med["plain"], "ratio_of_medians":
            med["alignui"]["train_steps_per_second"] / med["plain"]["train_steps_per_second"],
            "median_round_ratio": statistics.median(ratios), "rounds": rounds,
            # CPU time of the training loop does not count time the process waited for a core: the stable figure
            # on a shared host, where single rounds' wall time swings by 15%
            "cpu_ratio_of_medians": med["alignui"]["cpu_steps_per_second"] / med["plain"]["cpu_steps_per_second"]}


def loop_additions_ms(calls: int = 2000) -> float:
    """What alignui adds inside the training loop, per step, timed in-process (immune to other jobs' load):
    RunCallback.on_step_end (stop flag, throttled status.json) + on_log (a metrics.jsonl line, a log line)."""
    from types import SimpleNamespace

    from alignui.training.metrics import RunCallback
    from alignui.runs import RunDir

    run = RunDir(Path(tempfile.mkdtemp(prefix="alignui-cb-")))
    callback = RunCallback(run, log=lambda line: None)
    state = SimpleNamespace(global_step=0, max_steps=calls, epoch=0.0)
    control = SimpleNamespace(should_save=False, should_training_stop=False)
    logs = {k: 0.5 for k in ("loss", "grad_norm", "learning_rate", "entropy", "num_tokens", "logits/chosen",
                             "logits/rejected", "mean_token_accuracy", "rewards/chosen", "rewards/rejected",
                             "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected")}
    callback.on_train_begin(None, state, control)
    started = time.perf_counter()
    for step in range(1, calls + 1):
        state.global_step = step
        callback.on_step_end(None, state, control)
        callback.on_log(None, state, control, logs=dict(logs))
    cost = (time.perf_counter() - started) / calls * 1000
    shutil.rmtree(run.path, ignore_errors=True)
    return cost


def prepare(root: Path, args) -> tuple[Path, dict]:
    """The data root with a snapshot and the model, and the shared settings."""
    demo = root / "models" / "demo"
    from alignui.config import AppConfig

    built = [d for d in (AppConfig().demo_model_dir, REPO / ".pytest_cache" / "d" / "alignui-cache" / "models"
                         / "demo") if is_built(d)]
    if built:  # the build is deterministic: a finished copy is the same model, and saves a minute
        shutil.copytree(built[0], demo)
    demo = ensure_demo_model(demo, log=lambda m: None)
    rng = random.Random(0)
    if args.model_size == "demo":
        model = demo
        train_prompts, _ = split_prompts(rng, 0)
        rows = closer_pairs(train_prompts, args.steps * args.batch_size, rng)
    else:
        model = build_model(root / "models" / args.model_size, args.model_size, demo)
        rows = long_pairs(args.steps * args.batch_size, args.answers_per_side, rng)
    write_snapshot(root, "dpo-bench", rows, rows[:8])
    settings = {"device": args.device, "cpu_threads": args.cpu_threads if args.device == "cpu" else 0,
                "learning_rate": 3e-4 if args.model_size == "demo" else 5e-6, "max_steps": args.steps,
                "batch_size": args.batch_size, "max_length": args.max_length, "lora_r": args.lora_r, "beta": 0.1,
                "gradient_checkpointing": args.device == "cuda"}
    return model, settings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", action="store_true", help="CUDA, 0.5B-class model, LoRA and QLoRA, +/- precompute")
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])
    p.add_argument("--model-size", default=None, choices=["demo", "tiny", "0.5b"])
    p.add_argument("--plan", default=None, choices=["overhead", "presets"],
                   help="overhead: alignui vs plain TRL on the same settings (default on CPU); presets: "
                        "bench/dpo_gpu.py's side-by-side runs (default with --gpu)")
    p.add_argument("--variants", default=None, help=f"overhead plan: comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--answers-per-side", type=int, default=12)
    p.add_argument("--lora-r", type=int, default=None)
    p.add_argument("--cpu-threads", type=int, default=1, help="torch threads on CPU (1: see configs/dpo.yaml)")
    args = p.parse_args()
    gpu = args.gpu
    args.device = args.device or ("cuda" if gpu else "cpu")
    args.model_size = args.model_size or ("0.5b" if gpu else "demo")
    variants = (args.variants or ("lora,lora+precompute,qlora,qlora+precompute" if gpu else "lora")).split(",")
    args.rounds = args.rounds or (1 if gpu else 5)  # on a GPU: 4 variants x 2 runners fit a ~10-minute lease
    args.steps = args.steps or (20 if gpu else 40)
    args.batch_size = args.batch_size or (4 if gpu else 8)
    args.max_length = args.max_length or (1024 if args.model_size != "demo" else 256)
    args.lora_r = args.lora_r or (16 if args.model_size != "demo" else 8)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--gpu / --device cuda needs a CUDA GPU; none is visible here")
    args.plan = args.plan or ("presets" if gpu else "overhead")
    root = Path(tempfile.mkdtemp(prefix="alignui-bench-dpo-"))
    try:
        model, settings = prepare(root, args)
        if args.plan == "presets":
            return presets_plan(root, model, settings, args)
        report = {}
        for name in variants:
            print(f"{name}: {args.model_size} model on {args.device}, {args.steps} steps x batch {args.batch_size}, "
                  f"{args.rounds} rounds", flush=True)
            report[name] = compare(root, model, {**settings, **VARIANTS[name]}, args.rounds)
        print_table(report)
        extra = loop_additions_ms()
        for name, r in report.items():
            step_ms = 1000 / r["plain"]["train_steps_per_second"]
            r["loop_additions_ms"] = extra
            r["implied_ratio"] = step_ms / (step_ms + extra)
            print(f"{name}: alignui's additions to the loop cost {extra:.3f} ms per step against a {step_ms:.1f} ms "
                  f"plain step: implied ratio {r['implied_ratio']:.4f}")
        print(json.dumps(report))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def presets_plan(root: Path, model: Path, settings: dict, args) -> None:
    """bench/dpo_gpu.py's runs and comparisons; the JSON line last (scripts/gpu-check.sh reads it)."""
    import dpo_gpu

    print(f"presets plan: {args.model_size} model on {args.device}, {args.steps} steps x batch {args.batch_size}, "
          f"max_length {args.max_length}", flush=True)
    head = {"plan": "presets", "device": args.device, "model_size": args.model_size, "steps": args.steps,
            "batch_size": args.batch_size, "max_length": args.max_length}

    def so_far(done: dict) -> None:  # a JSON line after each run: a bench stopped at its limit still reports
        if done:
            print(json.dumps({**head, "partial": True, "runs": done}), flush=True)

    results = dpo_gpu.run_all(root, model, settings, run_alignui, run_plain, log=lambda m: print(m, flush=True),
                              on_result=so_far)
    comparisons = dpo_gpu.compare(results)
    dpo_gpu.print_table(comparisons)
    print(json.dumps({**head, "runs": results, "comparisons": comparisons}))


def print_table(report: dict) -> None:
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    print("\n| variant | alignui steps/s | plain TRL steps/s | ratio (medians) | median round ratio | "
          "ratio per CPU-second | alignui tokens/s | plain tokens/s | alignui peak GiB | plain peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in report.items():
        a, p = r["alignui"], r["plain"]
        print(f"| {name} | {fmt(a['train_steps_per_second'], '.3f')} | {fmt(p['train_steps_per_second'], '.3f')} | "
              f"{r['ratio_of_medians']:.3f} | {r['median_round_ratio']:.3f} | {r['cpu_ratio_of_medians']:.3f} | "
              f"{fmt(a['tokens_per_second'], '.0f')} | "
              f"{fmt(p['tokens_per_second'], '.0f')} | {fmt(a['peak_gpu_memory_gb'], '.2f')} | "
              f"{fmt(p['peak_gpu_memory_gb'], '.2f')} |")


if __name__ == "__main__":
    started = time.time()
    main()
    print(f"(took {time.time() - started:.0f} s)")
