"""Many annotators at once: pairs/s and time to first token with shared decode steps vs one request at a time.

Starts the real app once per serving path on the same model (`python -m alignui serve`: shared decode steps
in the web process, the default; the same steps in a process of their own, --decode-process; one request at a
time, --no-batching), and for N = 1, 2, 4, 8, 16 simulated annotators (one gradio_client each, all at once) asks
/generate_pair `--pairs-each` times per annotator, streaming. Prints, per path and N: pairs/s, p50/p95 time to the first
token (first non-empty text on either side) and to the complete pair, the tokens per pair the server
stored, and pairs/s(N) / pairs/s(1); then batched/one-at-a-time side by side.

    python bench/concurrent_annotators.py [--model demo|random-26m|REF] [--pairs-each 4] [--ns 1,2,4,8,16]
    python bench/concurrent_annotators.py --in-process [...]

`--in-process` leaves the web server out: N threads call the generation core (serving.generation.stream_rows)
on one loaded model, batched and one at a time, side by side. It is the ceiling that the scheduler alone allows;
the gap to the served numbers is what the web server and the clients cost.

`--model random-26m` serves a random-init 26M-parameter Llama with the demo tokenizer (bench/pair_generation.py's
shape, saved to a temporary directory and served by path): the issue's "26M model", whose responses run to the
full max_new_tokens (no EOS learned), so every pair costs the same. `--model random-0.5b` is the same with
Qwen2.5-0.5B's layers, for a GPU (scripts/gpu-check.sh runs it --in-process there, with --json).

The clients run in this process, beside the server: on a small shared host they take CPU from it (the
numbers are for the whole machine, clients included). They are kept light (one TLS context for all requests,
a coarse poll for the first token): before that, at 8 annotators they used ~40% of the CPU time on this 2-core
host. The per-person rate limit is off (ALIGNUI_RATE_LIMIT=0): every simulated annotator comes from the same
address.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import certifi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/concurrent_annotators.py` from a checkout reads the server's database
POLL_S = 0.005  # how often an annotator looks for its first token: the time to it is measured to within this
PROMPTS = ["Tell me about cats.", "What do dogs eat?", "Describe the sea.", "How do birds fly?",
           "Tell me about the sun.", "What is a tree?", "Describe a city.", "Tell me about fish."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The serving paths measured side by side: (title, `alignui serve` flags, AppConfig settings for --in-process).
PATHS = {
    "shared": ("shared decode steps (default)", (), {}),
    "process": ("shared decode steps in their own process (--decode-process)", ("--decode-process",),
                {"decode_process": True}),
    "single": ("one at a time (--no-batching)", ("--no-batching",), {"batching": False}),
}


def start_server(storage: Path, model: str, flags: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "ALIGNUI_RATE_LIMIT": "0", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "alignui", "serve", "--storage", str(storage), "--port", str(port), "--model", model]
    storage.mkdir(parents=True, exist_ok=True)
    log = storage / "server.log"  # in the run's temporary data root: shown if the server does not come up
    proc = subprocess.Popen(cmd + list(flags), env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    from gradio_client import Client

    deadline, last = time.monotonic() + 1200, ""
    while time.monotonic() < deadline:  # up and the model loaded: a pair comes back
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            Client(url, verbose=False).predict("warm up", api_name="/generate_pair")
            return proc, url
        except Exception as exc:  # noqa: BLE001 - not up yet, or the model still loads
            last = repr(exc)[:300]
            time.sleep(2)
    proc.kill()
    raise SystemExit(f"the server did not come up in 20 minutes (last answer: {last}); its log ends:\n"
                     + log.read_text(errors="replace")[-2000:])


def one_pair(client, prompt: str) -> tuple[float, float]:
    """(seconds to the first token, seconds to the complete pair) of one streamed /generate_pair.

    Looks at the job's outputs every POLL_S until the first text arrives, then waits on its result. By hand
    because iterating a gradio_client Job polls every millisecond until the job ends (8 annotators, 96 pairs:
    1.0-1.1 s of client CPU that way, 0.6-0.7 s this way, on the 2 cores the server also runs on)."""
    t0 = time.perf_counter()
    first = None
    job = client.submit(prompt, api_name="/generate_pair")
    while first is None and not job.done():
        if any(out[0] or out[1] for out in job.outputs()):
            first = time.perf_counter() - t0
        else:
            time.sleep(POLL_S)
    job.result(timeout=600)
    done = time.perf_counter() - t0
    return (first if first is not None else done), done


def run_all(n: int, annotator, firsts: list[float], totals: list[float]) -> dict:
    """Run annotator(i) for i < n in threads at once; pairs/s and the percentiles of what they recorded."""
    threads = [threading.Thread(target=annotator, args=(i,)) for i in range(n)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return {"n": n, "pairs": len(totals), "errors": [], "pairs_s": len(totals) / wall,
            "ttft_p50": pct(firsts, 50), "ttft_p95": pct(firsts, 95),
            "pair_p50": pct(totals, 50), "pair_p95": pct(totals, 95)}


def run_n(url: str, n: int, pairs_each: int) -> dict:
    from gradio_client import Client

    # gradio_client opens a new httpx client per request, which builds a TLS context from the CA file even for
    # http://: given one context, built once, 8 annotators' 96 pairs took 0.8 s of client CPU instead of 7.2 s
    tls = ssl.create_default_context(cafile=certifi.where())  # what httpx builds by default
    clients = [Client(url, verbose=False, ssl_verify=tls) for _ in range(n)]
    firsts, totals, errors, lock = [], [], [], threading.Lock()
    barrier = threading.Barrier(n)

    def annotator(i: int) -> None:
        barrier.wait()
        for j in range(pairs_each):
            try:
                first, total = one_pair(clients[i], PROMPTS[(i + j) % len(PROMPTS)])
            except Exception as exc:  # noqa: BLE001 - counted and shown
                with lock:
                    errors.append(repr(exc)[:200])
                continue
            with lock:
                firsts.append(first)
                totals.append(total)

    return run_all(n, annotator, firsts, totals) | {"errors": errors}


def run_n_in_process(handle, n: int, pairs_each: int) -> dict:
    """As run_n, with threads calling the generation core directly (no web server, no clients)."""
    from alignui.serving.generation import SamplingSettings, stream_rows

    side = SamplingSettings()  # the app's default sides
    firsts, totals, tokens, lock = [], [], [], threading.Lock()
    barrier = threading.Barrier(n)

    def annotator(i: int) -> None:
        barrier.wait()
        for j in range(pairs_each):
            t0, first = time.perf_counter(), None
            messages = [{"role": "user", "content": PROMPTS[(i + j) % len(PROMPTS)]}]
            for texts, _, gens in stream_rows(handle, messages, [side, side], seed=i * 1000 + j, owner=f"a{i}"):
                if first is None and any(texts):
                    first = time.perf_counter() - t0
            done = time.perf_counter() - t0
            with lock:
                firsts.append(first if first is not None else done)
                totals.append(done)
                tokens.append(sum(g.n_tokens for g in gens))

    return run_all(n, annotator, firsts, totals) | {"tokens": tokens}


def measure_in_process(model: str, path: str, ns: list[int], pairs_each: int) -> tuple[list[dict], float]:
    from alignui.config import AppConfig
    from alignui.serving.loading import load_model

    with tempfile.TemporaryDirectory(prefix="alignui-bench-") as tmp:
        handle = load_model(AppConfig(storage=Path(tmp), model=model, **PATHS[path][2]), log=lambda m: None)
        run_n_in_process(handle, 1, 1)  # warm up (with --decode-process: until the child has loaded)
        results = each_n(path, ns, lambda n: run_n_in_process(handle, n, pairs_each))
        handle.close()
    tokens = [t for r in results for t in r["tokens"]]
    return results, sum(tokens) / max(1, len(tokens))


def pct(xs: list[float], p: int) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def tokens_per_pair(storage: Path) -> float:
    from alignui.db import Store

    with Store(storage / "alignui.duckdb") as store:
        rows = store.query("SELECT avg(n_tokens) FROM generations")
    return 2 * float(rows[0][0] or 0)


#: Random-init Llamas with the demo tokenizer, by --model name: (the layer shapes, why that size).
RANDOM_MODELS = {
    "random-26m": dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8,
                       num_key_value_heads=8),  # the "26M model" on CPU (bench/pair_generation.py's too)
    "random-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                        num_key_value_heads=2),  # Qwen2.5-0.5B's layers (0.36B with this vocabulary): for a GPU
}


def random_model(into: Path, name: str) -> str:
    """A random-init Llama of RANDOM_MODELS[name] with the demo tokenizer, saved under `into`; its responses run to
    their full max_new_tokens (it learned no end token), so every pair costs the same."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from alignui.config import AppConfig
    from alignui.serving.loading import load_model

    tok = load_model(AppConfig(storage=into / "demo-storage", model="demo"), log=lambda m: None).tokenizer
    cfg = LlamaConfig(vocab_size=len(tok), max_position_embeddings=1024, tie_word_embeddings=True,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **RANDOM_MODELS[name])
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(into / name)
    tok.save_pretrained(into / name)
    return str(into / name)


def each_n(path: str, ns: list[int], run_one) -> list[dict]:
    """run_one(n) for each N, each printed as it is measured (a slow shared host shows progress)."""
    results = []
    for n in ns:
        results.append(run_one(n))
        print(f"  {path} N={n}: {results[-1]['pairs_s']:.2f} pairs/s, "
              f"ttft p95 {results[-1]['ttft_p95']:.2f} s, {len(results[-1]['errors'])} errors", flush=True)
    return results


def measure(model: str, path: str, ns: list[int], pairs_each: int) -> tuple[list[dict], float]:
    with tempfile.TemporaryDirectory(prefix="alignui-bench-") as tmp:
        proc, url = start_server(Path(tmp), model, PATHS[path][1])
        try:
            results = each_n(path, ns, lambda n: run_n(url, n, pairs_each))
        finally:
            proc.terminate()
            proc.wait(timeout=120)
        return results, tokens_per_pair(Path(tmp))


def print_table(name: str, results: list[dict], tokens: float) -> None:
    base = results[0]["pairs_s"]
    print(f"\n{name} (avg {tokens:.0f} tokens per pair, both sides)")
    print(f"{'N':>3} {'pairs':>5} {'pairs/s':>8} {'xN=1':>6} {'ttft p50':>9} {'ttft p95':>9} "
          f"{'pair p50':>9} {'pair p95':>9} errors")
    for r in results:
        print(f"{r['n']:>3} {r['pairs']:>5} {r['pairs_s']:>8.2f} {r['pairs_s'] / base:>5.2f}x {r['ttft_p50']:>8.2f}s "
              f"{r['ttft_p95']:>8.2f}s {r['pair_p50']:>8.2f}s {r['pair_p95']:>8.2f}s {len(r['errors'])}"
              + (f" e.g. {r['errors'][0]}" if r["errors"] else ""))


def main() -> None:
    faulthandler.dump_traceback_later(1200, exit=True)  # a hung run says where it hangs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--pairs-each", type=int, default=4, help="pairs each simulated annotator asks for")
    parser.add_argument("--ns", default="1,2,4,8,16", help="numbers of annotators, comma-separated")
    parser.add_argument("--in-process", action="store_true", help="no web server: the generation core alone")
    parser.add_argument("--paths", default="shared,process,single",
                        help=f"serving paths to measure, comma-separated, from {', '.join(PATHS)}")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results (gpu-check.sh)")
    args = parser.parse_args()
    ns = [int(x) for x in args.ns.split(",")]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not paths or any(p not in PATHS for p in paths):
        raise SystemExit(f"--paths takes names from {', '.join(PATHS)}, comma-separated; got {args.paths!r}")
    if args.model in RANDOM_MODELS:
        keep = tempfile.TemporaryDirectory(prefix="alignui-bench-model-")  # removed when the run ends
        args.model = random_model(Path(keep.name), args.model)
    print(f"alignui concurrent annotators: model {args.model}, {args.pairs_each} pairs each, "
          f"{os.cpu_count()} CPUs " + ("(in process: no web server)" if args.in_process else
                                       "(clients run on the same host)"))
    run = measure_in_process if args.in_process else measure
    results = {}
    for path in paths:
        results[path], tokens = run(args.model, path, ns, args.pairs_each)
        print_table(PATHS[path][0], results[path], tokens)
    for top, bottom in [("shared", "single"), ("process", "single"), ("process", "shared")]:
        if top in results and bottom in results:
            print(f"\nside by side: {top} / {bottom}")
            print(f"{'N':>3} {'pairs/s':>8} {'ttft p95':>9}")
            for b, s in zip(results[top], results[bottom]):
                print(f"{b['n']:>3} {b['pairs_s'] / s['pairs_s']:>7.2f}x {b['ttft_p95'] / s['ttft_p95']:>8.2f}x")
    if args.json:
        import json

        keys = ("n", "pairs", "pairs_s", "ttft_p50", "ttft_p95", "pair_p50", "pair_p95")
        print(json.dumps({path: [{k: r[k] for k in keys} | {"errors": len(r.get("errors", []))} for r in rows]
                          for path, rows in results.items()}))


if __name__ == "__main__":
    main()
