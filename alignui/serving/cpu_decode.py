"""Batched decoding on CPU: give each row of a decode step its own core.

Owns: `BatchParallelLinear` (an nn.Linear whose forward sends a decode step of several rows through
torch.bmm), `speed_up_batched_decode(model)` which measures whether that pays on this machine and
switches the model's linear layers over if it does, and the switch itself both ways
(`use_batch_parallel`, `plain_linear`, `is_batch_parallel`).

Why by hand: a paired generation decodes two rows of one token each. BLAS (MKL, and OpenBLAS too)
runs such a small GEMM on one core, so two rows cost 1.75-2.3x one row while the second core idles
(measured on a 2-core AMD EPYC host: 512->1376, one row 89 us, two rows 172 us, one row on 1 or 2
threads the same). torch.bmm with the weight broadcast over the batch puts each row on its own core:
two rows in 1.05-1.19x one row, identical greedy output. No library offers this switch; it is a
subclass (state dict, PEFT wrapping and isinstance checks are unchanged). Whether it pays depends on
the machine (a many-core CPU may already split a 2-row GEMM), hence the measurement before switching.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

#: Switch over only when bmm is at least this much faster than F.linear on the probe layer.
MIN_GAIN = 1.1


class BatchParallelLinear(nn.Linear):
    """nn.Linear that computes a decode step (batch > 1, one token per row) with one bmm over the batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3 and x.shape[0] > 1 and x.shape[1] == 1:
            out = torch.bmm(x, self.weight.t().unsqueeze(0).expand(x.shape[0], -1, -1))
            return out if self.bias is None else out + self.bias
        return F.linear(x, self.weight, self.bias)


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if type(m) in (nn.Linear, BatchParallelLinear)]


def _seconds(fn, reps: int) -> float:
    started = time.perf_counter()
    for _ in range(reps):
        fn()
    return time.perf_counter() - started


def decode_gain(layer: nn.Linear, rows: int = 2, rounds: int = 15, reps: int = 20) -> float:
    """How many times faster a `rows`-row decode step through `layer` runs as BatchParallelLinear than as
    nn.Linear (forward calls, Python overhead included): the median over interleaved rounds of the per-round
    ratio (a shared, noisy host disturbs both sides alike)."""
    x = torch.randn(rows, 1, layer.in_features, dtype=layer.weight.dtype)
    with torch.inference_mode():
        def plain():
            return nn.Linear.forward(layer, x)

        def batched():
            return BatchParallelLinear.forward(layer, x)

        _seconds(plain, reps), _seconds(batched, reps)  # warm-up
        return statistics.median(_seconds(plain, reps) / _seconds(batched, reps) for _ in range(rounds))


def speed_up_batched_decode(model: nn.Module) -> float | None:
    """On a multi-core CPU, switch the model's linear layers to BatchParallelLinear if that is at least MIN_GAIN
    times faster on a representative layer (the median-sized one). Returns the measured gain, or None when
    nothing was measured (one thread, a non-CPU or non-float32 model, no linear layers)."""
    linears = _linears(model)
    if torch.get_num_threads() < 2 or not linears:
        return None
    probe = sorted(linears, key=lambda m: m.weight.numel())[len(linears) // 2]
    if probe.weight.device.type != "cpu" or probe.weight.dtype != torch.float32:
        return None
    gain = decode_gain(probe)
    if gain >= MIN_GAIN:
        use_batch_parallel(model)
    return gain


def use_batch_parallel(model: nn.Module) -> None:
    """Switch every linear layer of `model` to BatchParallelLinear, unmeasured."""
    for m in _linears(model):
        m.__class__ = BatchParallelLinear


def plain_linear(model: nn.Module) -> None:
    """Switch every linear layer back to nn.Linear (benchmarks compare both)."""
    for m in _linears(model):
        m.__class__ = nn.Linear


def is_batch_parallel(model: nn.Module) -> bool:
    return any(isinstance(m, BatchParallelLinear) for m in model.modules())
