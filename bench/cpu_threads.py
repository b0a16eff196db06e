"""How many CPU threads the served model should get: pairs/s and the server's CPU per pair, side by side.

Starts the real app twice on the same model (`python -m alignui serve --cpu-threads 1`, and `--cpu-threads` one per
core, torch's own default), warms both, then takes turns: for each round and each N in --ns, the same simulated
annotators (bench/concurrent_annotators.py's gradio_client loop, streamed /generate_pair) drive one server, then the
other. Prints per N the median pairs/s, the server process's CPU seconds per pair (all its threads, psutil's
cpu_times: an idle OpenMP thread spinning counts), and the ratios one thread / one per core.

    python bench/cpu_threads.py [--model demo|random-26m|REF] [--ns 1,8] [--rounds 3] [--pairs-each 12]

Why it exists: the demo model's default (AppConfig.cpu_threads = 0 picks one thread for it) rests on this
measurement; on a 26M model two runs disagreed; run it on your host before choosing --cpu-threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import psutil  # a dependency of accelerate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import concurrent_annotators as ca  # noqa: E402 - the bench's own server start and annotator loop


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (every thread), in seconds."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--ns", default="1,8", help="numbers of annotators, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="turns each server gets at each N")
    parser.add_argument("--pairs-each", type=int, default=12, help="pairs each simulated annotator asks for per turn")
    args = parser.parse_args()
    ns = [int(x) for x in args.ns.split(",")]
    cores = os.cpu_count() or 1
    if args.model == "random-26m":
        keep = tempfile.TemporaryDirectory(prefix="alignui-bench-model-")  # removed when the run ends
        args.model = ca.random_model(Path(keep.name), "random-26m")
    setups = {"1 thread": 1, f"{cores} threads": cores}
    print(f"alignui cpu threads: model {args.model}, {cores} CPUs, {args.rounds} rounds of {args.pairs_each} pairs "
          "per annotator (clients run on the same host)")
    with tempfile.TemporaryDirectory(prefix="alignui-bench-") as tmp:
        servers = {name: ca.start_server(Path(tmp) / name.replace(" ", "-"), args.model,
                                         ("--cpu-threads", str(threads)))
                   for name, threads in setups.items()}
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        try:
            for r in range(args.rounds):
                for n in ns:
                    for name, (proc, url) in servers.items():
                        before = cpu_seconds(proc.pid)
                        out = ca.run_n(url, n, args.pairs_each)
                        cpu = (cpu_seconds(proc.pid) - before) / max(1, out["pairs"])
                        results.setdefault((name, n), []).append((out["pairs_s"], cpu))
                        print(f"  round {r + 1} N={n} {name}: {out['pairs_s']:.2f} pairs/s, server CPU "
                              f"{cpu * 1e3:.0f} ms/pair, {len(out['errors'])} errors", flush=True)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=120)
    one, many = setups
    print(f"\nmedians over {args.rounds} rounds")
    print(f"{'N':>3} {one + ' pairs/s':>17} {many + ' pairs/s':>17} {'ratio':>6} {one + ' CPU/pair':>18} "
          f"{many + ' CPU/pair':>18} {'ratio':>6}")
    for n in ns:
        a = [statistics.median(x) for x in zip(*results[(one, n)])]
        b = [statistics.median(x) for x in zip(*results[(many, n)])]
        print(f"{n:>3} {a[0]:>17.2f} {b[0]:>17.2f} {a[0] / b[0]:>5.2f}x {a[1] * 1e3:>15.0f} ms "
              f"{b[1] * 1e3:>15.0f} ms {a[1] / b[1]:>5.2f}x")


if __name__ == "__main__":
    main()
