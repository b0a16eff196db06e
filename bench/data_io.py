"""Import and export throughput for N synthetic pairs, and vote-write latency while an export runs.

    python bench/data_io.py [--pairs 100000] [--votes 50] [--keep DIR]

Prints, measured side by side in one run on this machine:
- import of an N-pair TRL conversational .jsonl (read, check, convert, one transaction), pairs/s;
- export of those N pairs to a snapshot (DatasetDict + manifest + card), with and without the truncation
  report (the demo model's tokenizer, when it is built under the data root or the pytest cache);
- the time of a single vote write (Store.decide, committed) idle, and while an N-pair export runs in another
  thread of the same process (each thread has its own cursor), with the ratio of the two medians.
Targets (issue #4): import and export of 100k pairs each under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from alignui.data import ImportOptions, import_source  # noqa: E402
from alignui.db import NewGeneration, Store  # noqa: E402
from alignui.data.export import ExportOptions, export_snapshot  # noqa: E402
from alignui.team.identity import LOCAL_OPERATOR  # noqa: E402
from alignui.paths import StorageLayout  # noqa: E402

WORDS = "the a sea sky cat tea owl moon river stone light quiet bright slow green warm".split()


def synthetic_jsonl(path: Path, n: int) -> None:
    """N distinct conversational pairs (prompt ~12 words, replies ~25 and ~10 words), like small chat data."""
    with path.open("w") as f:
        for i in range(n):
            words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(40)]
            f.write(json.dumps({
                "prompt": [{"role": "user", "content": f"Question {i}: " + " ".join(words[:12]) + "?"}],
                "chosen": [{"role": "assistant", "content": " ".join(words[:25]) + f" ({i})."}],
                "rejected": [{"role": "assistant", "content": " ".join(words[25:35]) + "."}],
                "score": i % 10}) + "\n")


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def timed_cpu(fn):
    """(result, wall seconds, CPU seconds of this process): on a shared machine wall time also counts the
    waiting for a core, so both are printed."""
    cpu, start = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def demo_tokenizer(layout: StorageLayout):
    from alignui.serving.truncation import load_tokenizer

    from alignui.config import AppConfig

    for candidate in (AppConfig().demo_model_dir, layout.demo_model_dir,
                      Path(".pytest_cache/d/alignui-cache/models/demo")):
        if (candidate / "tokenizer_config.json").is_file():
            return load_tokenizer("demo", candidate, offline=True)[0]
    return None


def vote_latencies(store: Store, pending: list[str], stop: threading.Event | None, limit: int) -> list[float]:
    """Decide pending pairs one at a time (each committed) and time each write, until `stop` or `limit`."""
    out = []
    while pending and len(out) < limit and not (stop is not None and stop.is_set()):
        pid = pending.pop()
        _, seconds = timed(lambda: store.decide(pid, "a", annotator="bench"))
        out.append(seconds * 1000)
        if stop is not None:
            time.sleep(0.02)  # one vote every ~20 ms: a busy annotation team, not a write storm
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--votes", type=int, default=50, help="idle vote writes to time")
    parser.add_argument("--keep", help="data root to use (default: a temporary directory)")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="alignui-bench-"))
    layout = StorageLayout(root / "storage").ensure()
    import datasets, pyarrow  # noqa: F401,E401  (imported up front, as in the running app: not timed)
    src = root / "pairs.jsonl"
    _, gen_s = timed(lambda: synthetic_jsonl(src, args.pairs))
    print(f"{args.pairs} synthetic pairs written to {src} ({src.stat().st_size / 1e6:.1f} MB) in {gen_s:.1f} s")
    with Store(layout.db_path) as store:
        summary, import_s, import_cpu = timed_cpu(
            lambda: import_source(store, str(src), ImportOptions(), LOCAL_OPERATOR))
        print(f"import : {summary.imported} pairs in {import_s:6.2f} s wall ({import_cpu:5.2f} s CPU) = "
              f"{summary.imported / import_s:7.0f} pairs/s  (target < 10 s: {'met' if import_s < 10 else 'MISSED'})")
        opts = ExportOptions(max_length=None)
        result, export_s, export_cpu = timed_cpu(lambda: export_snapshot(store, layout, opts, LOCAL_OPERATOR))
        rows = result.manifest["rows"]
        print(f"export : {rows} pairs in {export_s:6.2f} s wall ({export_cpu:5.2f} s CPU) = "
              f"{rows / export_s:7.0f} pairs/s  (target < 10 s: {'met' if export_s < 10 else 'MISSED'})")
        tok = demo_tokenizer(layout)
        if tok is not None:
            from alignui.serving.truncation import truncation_report

            counted, full_s = timed(lambda: export_snapshot(store, layout, ExportOptions(), LOCAL_OPERATOR,
                                                            count_tokens=partial(truncation_report, tok)))
            print(f"export + truncation report (demo tokenizer): {full_s:6.2f} s wall "
                  f"({full_s / export_s:.2f}x the plain export; {counted.manifest['truncation']['over']} over 1024)")
        else:
            print("export + truncation report: skipped (no demo tokenizer built; run the tests or the app once)")
        pending = [store.save_pair([{"role": "user", "content": f"vote {i}"}], NewGeneration("base", "x"),
                                   NewGeneration("base", "y")).id for i in range(args.votes + 400)]
        idle = vote_latencies(store, pending, None, args.votes)
        stop, busy = threading.Event(), []
        worker = threading.Thread(target=lambda: busy.extend(vote_latencies(store, pending, stop, 400)))
        worker.start()
        _, during_s = timed(lambda: export_snapshot(store, layout, opts, LOCAL_OPERATOR))
        stop.set()
        worker.join()
    med_idle, med_busy = statistics.median(idle), statistics.median(busy)
    print(f"vote write, idle          : median {med_idle:6.1f} ms, max {max(idle):6.1f} ms ({len(idle)} votes)")
    print(f"vote write, during export : median {med_busy:6.1f} ms, max {max(busy):6.1f} ms ({len(busy)} votes "
          f"during a {during_s:.1f} s export of {rows} pairs); median ratio busy/idle {med_busy / med_idle:.1f}x")


if __name__ == "__main__":
    main()
