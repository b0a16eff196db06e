"""CPU time to store one generated pair, as the app does once both sides are written, beside another checkout.

    python bench/pair_save.py [--against OTHER_CHECKOUT] [--stored 1000] [--pairs 500] [--rounds 3]

Each measurement runs in its own process on a fresh DuckDB file that already holds `--stored` pairs (over 50
prompts that repeat, as a pool does), then times `--pairs` more saves. This checkout saves the way
annotation.pairs.stream_annotation_pair does (one transaction: the prompt found or inserted, both generations,
the comparison); a checkout from before that (`--against`, e.g. a `git worktree add /tmp/old ec60288`) is
driven the way it did it then (ensure_prompt, then save_pair on its id, which read the pair back with a join).
With `--against`, the two alternate for `--rounds` rounds and the ratio of the medians is printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE_CHECKOUT = r"""
import inspect, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from alignui.db import NewGeneration, Store
store = Store(Path(tempfile.mkdtemp(prefix="alignui-bench-")) / "a.duckdb")
gen = NewGeneration("demo", "A cat is a small animal. " * 4, {"temperature": 0.8, "top_p": 0.95, "seed": 1}, 30, 120.0)
one_transaction = "prompt_source" in inspect.signature(store.save_pair).parameters

def save(i):
    messages = [{"role": "user", "content": f"Prompt number {i % 50}?"}]
    if one_transaction:
        store.save_pair(messages, gen, gen, kind="annotate", annotator="ann", prompt_source="user")
    else:
        store.save_pair(messages, gen, gen, kind="annotate", annotator="ann", prompt_id=store.ensure_prompt(messages))

for i in range(int(sys.argv[2])):
    save(i)
began = time.process_time()
for i in range(int(sys.argv[3])):
    save(i)
print((time.process_time() - began) / int(sys.argv[3]) * 1000)
"""


def ms_per_pair(checkout: Path, stored: int, pairs: int) -> float:
    out = subprocess.run([sys.executable, "-c", ONE_CHECKOUT, str(checkout), str(stored), str(pairs)],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{checkout}: {out.stderr.strip().splitlines()[-1]}")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout, measured alternately with this one")
    parser.add_argument("--stored", type=int, default=1000, help="pairs stored before the timed ones")
    parser.add_argument("--pairs", type=int, default=500, help="pairs timed")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.against is not None and not (args.against / "alignui" / "db").is_dir():
        raise SystemExit(f"--against {args.against}: not an alignui checkout (no alignui/db there)")
    here, there = [], []
    for _ in range(args.rounds):
        here.append(ms_per_pair(ROOT, args.stored, args.pairs))
        if args.against is not None:
            there.append(ms_per_pair(args.against, args.stored, args.pairs))
    print(f"this checkout: {' '.join(f'{v:.2f}' for v in here)} ms CPU per saved pair "
          f"(median {statistics.median(here):.2f})")
    if there:
        print(f"{args.against}: {' '.join(f'{v:.2f}' for v in there)} ms (median {statistics.median(there):.2f})")
        print(f"ratio this / other: {statistics.median(here) / statistics.median(there):.2f}x")


if __name__ == "__main__":
    main()
