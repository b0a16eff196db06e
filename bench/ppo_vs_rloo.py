"""Mean reward reached per generated token: PPO (algorithm=ppo) vs RLOO, same budget, side by side in one run.

    python bench/ppo_vs_rloo.py [--rounds 1] [--steps 20] [--storage DIR]

Builds (or reuses, with --storage) a data root with the demo model, the closer-pairs snapshot and a reward model
(bench/rlhf_overhead.prepare), then runs, round by round in fresh processes and alternating which goes first:

- RLOO: `python -m alignui train rlhf --preset cpu-demo     --set max_steps=N --set logging_steps=1`
- PPO:  `python -m alignui train rlhf --preset cpu-demo-ppo --set max_steps=N --set logging_steps=1`

Both presets draw 16 samples (2 prompts x 8) per step, so N steps are the same generation budget; the token count
is measured, not assumed: the sum over steps of completions/mean_length x 16. Per side it prints the generated
tokens, the mean training reward over the last quarter of the steps (the reward reached), the gain over the first
step per 1000 generated tokens, the held-out mean reward of the final policy (the run's own evaluation, base ->
policy), and the training loop's wall seconds (TRL's train_runtime; on a shared host it swings with other load);
then PPO / RLOO.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

SIDES = {"rloo": "cpu-demo", "ppo": "cpu-demo-ppo"}
SAMPLES_PER_STEP = 16  # both presets: per_device_train_batch_size 16 = 2 prompts x num_generations 8


def run_side(storage: Path, reward_run: str, preset: str, steps: int, seed: int) -> dict:
    cmd = [sys.executable, "-m", "alignui", "train", "rlhf", "--storage", str(storage), "--snapshot", "closer",
           "--preset", preset, "--set", f"reward_model={reward_run}", "--set", f"max_steps={steps}",
           "--set", "logging_steps=1", "--set", f"seed={seed}", "--set", "save_steps=1000"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{preset} failed:\n{out.stderr[-2000:]}{out.stdout[-2000:]}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    rows = [json.loads(line) for line in (Path(summary["path"]) / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "reward" in r and "completions/mean_length" in r]
    tokens = sum(r["completions/mean_length"] * SAMPLES_PER_STEP for r in train)
    tail = train[-max(1, len(train) // 4):]
    reached = statistics.mean(r["reward"] for r in tail)
    return {"steps": len(train), "tokens": tokens, "reward_first": train[0]["reward"], "reward_reached": reached,
            "gain_per_1k_tokens": (reached - train[0]["reward"]) / tokens * 1000,
            "heldout_base": summary["eval"].get("reward_base"), "heldout_policy": summary["eval"].get("reward_policy"),
            "train_s": summary["train"]["train_runtime"]}


def main() -> None:
    from rlhf_overhead import prepare

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--storage", help="reuse this data root (default: a temporary one)")
    args = parser.parse_args()
    storage = Path(args.storage) if args.storage else Path(tempfile.mkdtemp(prefix="ppo-bench-")) / "storage"
    reward_run = prepare(storage)
    rounds = []
    for i in range(args.rounds):
        order = ["rloo", "ppo"] if i % 2 == 0 else ["ppo", "rloo"]  # alternate: drifting load favours neither
        rounds.append({side: run_side(storage, reward_run, SIDES[side], args.steps, seed=42 + i) for side in order})
        for side in ("rloo", "ppo"):
            r = rounds[-1][side]
            print(f"round {i + 1} {side:4s}: {r['tokens']:.0f} generated tokens in {r['steps']} steps, reward "
                  f"{r['reward_first']:+.2f} -> {r['reward_reached']:+.2f} ({r['gain_per_1k_tokens']:+.3f} per 1k "
                  f"tokens); held-out {r['heldout_base']:+.2f} -> {r['heldout_policy']:+.2f}; "
                  f"{r['train_s']:.0f} s of training (wall)", flush=True)
    med = {side: {k: statistics.median(r[side][k] for r in rounds) for k in rounds[0][side]} for side in SIDES}
    ratios = {k: med["ppo"][k] / med["rloo"][k] for k in ("tokens", "gain_per_1k_tokens", "train_s")
              if med["rloo"][k]}
    print(f"median of {len(rounds)} rounds x {args.steps} steps: reward reached per 1k generated tokens "
          f"PPO {med['ppo']['gain_per_1k_tokens']:+.3f} vs RLOO {med['rloo']['gain_per_1k_tokens']:+.3f} "
          f"(ratio {ratios.get('gain_per_1k_tokens', float('nan')):.2f}); reward reached PPO "
          f"{med['ppo']['reward_reached']:+.2f} vs RLOO {med['rloo']['reward_reached']:+.2f}; tokens ratio "
          f"{ratios.get('tokens', float('nan')):.2f}; training wall-time ratio {ratios.get('train_s', float('nan')):.2f}")
    print(json.dumps({"median": med, "ppo_over_rloo": ratios, "rounds": rounds}))


if __name__ == "__main__":
    main()
