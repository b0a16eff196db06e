"""KTO from thumbs alone: the held-out effect of a set of KTO settings over several fresh snapshots.

Each run repeats tests/training/test_train_kto_thumbs.py's recipe: the demo model answers each training prompt
twice, the closer oracle gives each answer a thumb through the Store, the thumbs are exported (fresh random row
ids, so a fresh train/test split and fresh batches each run), `python -m alignui train kto` trains with the given
settings, and the share of sampled held-out answers that end with the closer is measured. Prints one line per
run and the range, so settings are compared by their spread, not one lucky run (configs/kto.yaml quotes it).

    python bench/kto_thumbs_settings.py --runs 6 --set learning_rate=1e-3 --set per_device_train_batch_size=16 \\
        --set max_steps=120
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="fresh snapshots (and training seeds 1..runs)")
    parser.add_argument("--preset", default="cpu-demo", help="KTO preset the --set values override")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a KTO setting")
    args = parser.parse_args()

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignui.config import AppConfig
    from alignui.serving.demo_model import ensure_demo_model
    from alignui.training.synthetic import closer_rate, split_prompts
    from training.test_train_dpo import HELD_OUT
    from training.test_train_kto_thumbs import rate_with_the_oracle

    torch.set_num_threads(1)
    demo = ensure_demo_model(AppConfig().demo_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(demo)
    model = AutoModelForCausalLM.from_pretrained(demo, dtype=torch.float32).eval()
    train, held = split_prompts(random.Random(0), HELD_OUT)
    held_prompts = [q for q, _ in held]
    base = closer_rate(model, tokenizer, held_prompts)
    print(f"KTO from thumbs: preset {args.preset} {' '.join(args.set)}; held-out closer rate of the base {base:.1%}")
    rates = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="alignui-kto-") as tmp:
            storage = Path(tmp) / "storage"
            shutil.copytree(demo, storage / "models" / "demo")
            up, down = rate_with_the_oracle(storage, model, tokenizer, [q for q, _ in train])
            cmd = [sys.executable, "-m", "alignui", "train", "kto", "--storage", str(storage), "--preset",
                   args.preset, "--set", f"seed={run}", *[a for s in args.set for a in ("--set", s)]]
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"run {run}: train kto failed: {(out.stderr or out.stdout).strip().splitlines()[-1]}")
            summary = json.loads(out.stdout.strip().splitlines()[-1])
            tuned = PeftModel.from_pretrained(model, summary["adapter"]).eval()
            rates.append(closer_rate(tuned, tokenizer, held_prompts))
            model = tuned.unload()  # the base again for the next run's thumbs
        print(f"  run {run}: {up} up / {down} down -> held-out closer rate {rates[-1]:.1%}", flush=True)
    print(f"range over {len(rates)} runs: {min(rates):.1%} - {max(rates):.1%} (base {base:.1%})")


if __name__ == "__main__":
    main()
