"""Paired generation cost, measured side by side in one run (ratios, not absolute times).

For the demo model and a ~30M-parameter random-init Llama (same tokenizer), times:
  pair        alignui's stream_pair: both sides in one batched generate, streamed per side
  raw batch   one plain generate of a batch of two (no streamer, no per-side settings)
  plain batch the same with torch's own nn.Linear (the default); 'pair' and 'raw batch' run with
              --cpu-batch-parallel (alignui.serving.cpu_decode: one core per row); plain/raw = what that option gains
  single      one plain generate of one response of the same length (no streamer)
  sequential  two plain generates, one after the other
and the time until both sides of a streamed pair show text (what a user waits for).
Every response is forced to the same length (min_new_tokens) so the comparison is fair.
Rounds are interleaved and the median is reported, since this machine is shared and noisy.

    python bench/pair_generation.py [--tokens 64] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from alignui.config import AppConfig  # noqa: E402
from alignui.serving.cpu_decode import (  # noqa: E402
    is_batch_parallel, plain_linear, use_batch_parallel)
from alignui.serving.generation import PairSettings, stream_pair  # noqa: E402
from alignui.serving.loading import ModelHandle, load_model  # noqa: E402

MSGS = [{"role": "user", "content": "Tell me about the ocean and why it is blue."}]


def larger_model(demo: ModelHandle) -> ModelHandle:
    from concurrent_annotators import RANDOM_MODELS  # the one definition of the 26M shape (both benches serve it)

    cfg = LlamaConfig(vocab_size=len(demo.tokenizer), max_position_embeddings=1024, tie_word_embeddings=True,
                      eos_token_id=demo.tokenizer.eos_token_id, pad_token_id=demo.tokenizer.pad_token_id,
                      **RANDOM_MODELS["random-26m"])
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    use_batch_parallel(model)  # as alignui.serving.loading serves a CPU model with --cpu-batch-parallel
    return ModelHandle(model, demo.tokenizer, "random-30M", "cpu", torch.float32)


def time_plain_batch(h: ModelHandle, n: int) -> float:
    """A raw batch of two with torch's own nn.Linear in every layer, then the served layers restored."""
    switched = is_batch_parallel(h.model)
    plain_linear(h.model)
    try:
        return time_single(h, n, batch=2)
    finally:
        if switched:
            use_batch_parallel(h.model)


def time_pair(h: ModelHandle, n: int) -> tuple[float, float]:
    started, first_both = time.perf_counter(), None
    for u in stream_pair(h, MSGS, PairSettings.same(seed=0, max_new_tokens=n),
                         generate_kwargs={"min_new_tokens": n}):
        if first_both is None and u.text_a and u.text_b:
            first_both = time.perf_counter() - started
    return time.perf_counter() - started, first_both


def time_single(h: ModelHandle, n: int, count: int = 1, batch: int = 1) -> float:
    """Plain generate on the same model worker thread that stream_pair uses (same threading conditions)."""
    ids = h.tokenizer.apply_chat_template(MSGS, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids = {k: v.repeat(batch, 1) for k, v in ids.items()}

    def work() -> float:
        started = time.perf_counter()
        for _ in range(count):
            with torch.inference_mode():
                h.model.generate(**ids, max_new_tokens=n, min_new_tokens=n, do_sample=True, temperature=0.8,
                                 top_p=0.95, pad_token_id=h.tokenizer.pad_token_id)
        return time.perf_counter() - started

    return h.submit(work).result()


def bench(h: ModelHandle, n: int, rounds: int) -> None:
    time_pair(h, 8), time_single(h, 8)  # warm-up
    runs: dict[str, list[float]] = {"pair": [], "first": [], "raw": [], "plain": [], "single": [], "seq": []}
    for _ in range(rounds):
        p, f = time_pair(h, n)
        runs["pair"].append(p), runs["first"].append(f)
        runs["raw"].append(time_single(h, n, batch=2))
        runs["plain"].append(time_plain_batch(h, n))
        runs["single"].append(time_single(h, n))
        runs["seq"].append(time_single(h, n, count=2))
    m = {k: statistics.median(v) for k, v in runs.items()}
    ms = {k: f"{v * 1000:.0f} ms" for k, v in m.items()}
    rows = "one row per core" if is_batch_parallel(h.model) else "plain linear"
    print(f"{h.ref:>11} {h.n_parameters / 1e6:5.1f}M ({rows}) | pair {ms['pair']}, raw batch {ms['raw']}, plain batch "
          f"{ms['plain']}, single {ms['single']}, sequential {ms['seq']} | pair/single {m['pair'] / m['single']:.2f}, "
          f"raw batch/single {m['raw'] / m['single']:.2f}, plain batch/single {m['plain'] / m['single']:.2f}, "
          f"pair/raw batch {m['pair'] / m['raw']:.2f}, pair/sequential {m['pair'] / m['seq']:.2f}, "
          f"--cpu-batch-parallel gain (plain/raw batch) {m['plain'] / m['raw']:.2f} | "
          f"both sides visible after {ms['first']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = load_model(AppConfig(storage=Path(tmp), model="demo", cpu_batch_parallel=True), log=lambda m: None)
        print(f"paired generation, {args.tokens} new tokens per response, median of {args.rounds} interleaved rounds, "
              f"{torch.get_num_threads()} threads")
        bench(demo, args.tokens, args.rounds)
        bench(larger_model(demo), args.tokens, args.rounds)


if __name__ == "__main__":
    main()
