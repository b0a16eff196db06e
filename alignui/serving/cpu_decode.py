"""Batched decoding on CPU: give each row of a decode step its own core.

Owns: `BatchParallelLinear` (an nn.Linear whose forward sends a decode step of several rows through
torch.bmm) and the switch both ways (`use_batch_parallel`, `plain_linear`, `is_batch_parallel`). The app
switches only when asked (`--cpu-batch-parallel` / ALIGNUI_CPU_BATCH_PARALLEL=1), and records it in each
generation's params.

Why by hand: a paired generation decodes two rows of one token each. BLAS (MKL, and OpenBLAS too)
runs such a small GEMM on one core, so two rows cost 1.75-2.3x one row while the second core idles
(measured on a 2-core AMD EPYC host: 512->1376, one row 89 us, two rows 172 us, one row on 1 or 2
threads the same). torch.bmm with the weight broadcast over the batch puts each row on its own core:
two rows in 1.05-1.19x one row, identical greedy output. No library offers this switch; it is a
subclass (state dict, PEFT wrapping and isinstance checks are unchanged). Whether it pays depends on
the machine (a many-core CPU may already split a 2-row GEMM; another 2-core host ran a plain batch of two
in 1.12x one response), so it is an explicit option measured with bench/pair_generation.py, not a start-up
micro-benchmark (that let host noise at start pick the kernel).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

class BatchParallelLinear(nn.Linear):
    """nn.Linear that computes a decode step (batch > 1, one token per row) with one bmm over the batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3 and x.shape[0] > 1 and x.shape[1] == 1:
            out = torch.bmm(x, self.weight.t().unsqueeze(0).expand(x.shape[0], -1, -1))
            return out if self.bias is None else out + self.bias
        return F.linear(x, self.weight, self.bias)


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if type(m) in (nn.Linear, BatchParallelLinear)]


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
