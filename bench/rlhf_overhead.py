"""Steps per second of alignui's RL stage vs a plain TRL RLOOTrainer script, same setting, side by side.

    python bench/rlhf_overhead.py [--rounds 5] [--steps 20] [--storage DIR]

Builds (or reuses, with --storage) a data root with the demo model, a closer-pairs snapshot and a reward model
(`python -m alignui train reward --preset cpu-demo`), then alternates, round by round, each in a fresh process:

- alignui:   `python -m alignui train rlhf --preset cpu-demo --set max_steps=N --set reward_model=<run>`
             (the real job: pre-flight, our callbacks, rollout log, reward function, final evaluation)
- plain TRL: this file with --plain: the same model, prompts, reward model, LoRA and RLOOConfig, written the way
             TRL's docs write it (reward model passed as an nn.Module in reward_funcs, no alignui code).

Both start from the same seed and generate the very same rollouts, so the training loops do the same work.
Each side's `Trainer.train` is timed in wall time and in CPU time (process_time, one thread): on a shared
machine other processes' load swings wall time by +-50% between rounds, CPU time far less. Prints per-round
numbers, medians and the ratio alignui / plain for both clocks (target >= 0.97). Rounds alternate which
side goes first (ABBA), so a load that drifts during the run does not favour one side.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def time_training(out_file: str) -> None:
    """Record the training loop's wall and CPU time (process_time: robust to other processes' load) to a file."""
    import time as _time

    from transformers import Trainer

    original = Trainer.train

    def train(self, *args, **kwargs):
        wall, cpu = _time.perf_counter(), _time.process_time()
        result = original(self, *args, **kwargs)
        steps = self.state.global_step
        import torch

        Path(out_file).write_text(json.dumps({"steps": steps, "wall_s": _time.perf_counter() - wall,
                                              "cpu_s": _time.process_time() - cpu,
                                              "torch_threads": torch.get_num_threads()}))
        return result

    Trainer.train = train


def plain_trl(spec: dict) -> dict:
    """The plain TRL script (no alignui imports): RLOO with LoRA against a LoRA reward model, same setting."""
    import torch
    from datasets import load_from_disk
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl import RLOOConfig, RLOOTrainer

    torch.set_num_threads(spec["threads"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    train = load_from_disk(spec["dataset"])["train"]
    prompts, seen = [], set()
    for p in train["prompt"]:
        if json.dumps(p, sort_keys=True) not in seen:
            seen.add(json.dumps(p, sort_keys=True))
            prompts.append(p)
    from datasets import Dataset

    reward = AutoModelForSequenceClassification.from_pretrained(spec["model"], num_labels=1, dtype=torch.float32)
    reward = PeftModel.from_pretrained(reward, spec["reward_adapter"]).merge_and_unload().eval()
    reward.config.pad_token_id = tokenizer.pad_token_id
    policy = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    s = spec["settings"]
    args = RLOOConfig(output_dir=spec["out"], per_device_train_batch_size=s["per_device_train_batch_size"],
                      num_generations=s["num_generations"], max_completion_length=s["max_new_tokens"],
                      learning_rate=s["learning_rate"], beta=s["beta"], temperature=s["temperature"],
                      top_p=s["top_p"], max_steps=spec["steps"], logging_steps=s["logging_steps"],
                      save_steps=s["save_steps"], warmup_steps=s["warmup_ratio"], lr_scheduler_type=s["lr_scheduler_type"],
                      seed=s["seed"], bf16=False, use_cpu=True, report_to="none", disable_tqdm=True,
                      gradient_checkpointing=False, disable_dropout=True)
    lora = LoraConfig(r=s["lora_r"], lora_alpha=s["lora_alpha"], lora_dropout=s["lora_dropout"],
                      target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = RLOOTrainer(model=policy, reward_funcs=reward, args=args, train_dataset=Dataset.from_dict({"prompt": prompts}),
                          processing_class=tokenizer, reward_processing_classes=tokenizer, peft_config=lora)
    return trainer.train().metrics


def prepare(storage: Path) -> str:
    """A data root with the demo model, snapshot 'closer' and a reward model; returns the reward run id."""
    from alignui.serving.demo_model import ensure_demo_model
    from alignui.serving.reward_model import find_reward_models
    from alignui.training.synthetic import closer_snapshot

    ensure_demo_model(storage / "models" / "demo", log=lambda m: None)
    if not (storage / "snapshots" / "closer").is_dir():
        closer_snapshot(storage, "closer", train_rows=200, test_rows=40, held_out=110, seed=0)
    found = find_reward_models(storage)
    if found:
        return found[0].name
    return run_cli(storage, "reward", [])["run"]


def run_cli(storage: Path, method: str, sets: list[str]) -> dict:
    cmd = [sys.executable, "-m", "alignui", "train", method, "--storage", str(storage), "--snapshot", "closer",
           "--preset", "cpu-demo"] + [a for kv in sets for a in ("--set", kv)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{method} failed:\n{out.stderr[-2000:]}{out.stdout[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed(cmd: list[str]) -> tuple[dict, str]:
    """Run a side in a fresh process; returns (its training-loop timing, its stdout)."""
    timing = Path(tempfile.mkstemp(prefix="rlhf-bench-", suffix=".json")[1])
    out = subprocess.run([sys.executable, __file__, *cmd(str(timing))], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{out.stderr[-3000:]}{out.stdout[-2000:]}")
    result = json.loads(timing.read_text())
    timing.unlink()
    return result, out.stdout


def one_round(storage: Path, reward_run: str, steps: int, plain_first: bool) -> dict[str, dict]:
    """Training-loop timings of alignui's RL stage and of the plain TRL script, same setting, one after the other."""
    from alignui.training.config import build_config
    from alignui.training.methods import get_method
    from alignui.training.rlhf import RLHFTrainConfig

    argv = ["train", "rlhf", "--storage", str(storage), "--snapshot", "closer", "--preset", "cpu-demo",
            "--set", f"reward_model={reward_run}", "--set", f"max_steps={steps}"]
    config = build_config(RLHFTrainConfig, config_file=get_method("rlhf").presets_path, preset="cpu-demo")
    spec = {"model": str((storage / "models" / "demo").resolve()), "dataset": str(storage / "snapshots" / "closer" /
            "dataset"), "reward_adapter": str(storage / "runs" / reward_run / "adapter"),
            "threads": config.cpu_threads or 1, "steps": steps, "out": tempfile.mkdtemp(prefix="plain-rloo-"),
            "settings": config.to_dict()}
    sides = {"alignui": lambda t: ["--timed-cli", json.dumps([t, *argv])],
             "plain": lambda t: ["--plain", json.dumps({**spec, "timing": t})]}
    order = ["plain", "alignui"] if plain_first else ["alignui", "plain"]  # ABBA: drifting load cancels out
    result = {side: timed(sides[side])[0] for side in order}
    shutil.rmtree(spec["out"], ignore_errors=True)
    return result


def report(rows: list[dict[str, dict]], steps: int) -> dict:
    """Medians over rounds of steps/s by CPU time (robust to other load) and by wall time, and their ratios."""
    def rate(side: str, clock: str) -> list[float]:
        return [r[side]["steps"] / r[side][clock] for r in rows]

    out = {}
    for clock in ("cpu_s", "wall_s"):
        ours, plain = statistics.median(rate("alignui", clock)), statistics.median(rate("plain", clock))
        paired = statistics.median(a / b for a, b in zip(rate("alignui", clock), rate("plain", clock)))
        out[clock] = {"alignui_steps_per_s": ours, "plain_steps_per_s": plain, "ratio": ours / plain,
                      "median_round_ratio": paired}
        print(f"by {'CPU' if clock == 'cpu_s' else 'wall'} time, median of {len(rows)} rounds x {steps} RLOO steps: "
              f"alignui {ours:.3f} steps/s, plain TRL {plain:.3f} steps/s, ratio {ours / plain:.3f} (median of "
              f"per-round ratios {paired:.3f}; target >= 0.97)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--storage", help="reuse this data root (default: a temporary one)")
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    parser.add_argument("--timed-cli", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        spec = json.loads(args.plain)
        time_training(spec["timing"])
        print(json.dumps(plain_trl(spec)))
        return
    if args.timed_cli:
        out_file, *argv = json.loads(args.timed_cli)
        time_training(out_file)
        from alignui.cli.main import main as cli_main

        raise SystemExit(cli_main(argv))
    storage = Path(args.storage) if args.storage else Path(tempfile.mkdtemp(prefix="rlhf-bench-")) / "storage"
    reward_run = prepare(storage)
    rows = []
    for i in range(args.rounds):
        rows.append(one_round(storage, reward_run, args.steps, plain_first=i % 2 == 1))
        a, b = rows[-1]["alignui"], rows[-1]["plain"]
        print(f"round {i + 1}: alignui {a['steps'] / a['cpu_s']:.3f} steps/CPU-s ({a['steps'] / a['wall_s']:.3f}/s wall), "
              f"plain TRL {b['steps'] / b['cpu_s']:.3f} steps/CPU-s ({b['steps'] / b['wall_s']:.3f}/s wall)", flush=True)
    print(json.dumps({**report(rows, args.steps), "rounds": rows}))

if __name__ == "__main__":
    main()
