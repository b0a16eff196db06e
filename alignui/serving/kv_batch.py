"""A running decode batch over one KV cache: rows join (after their own prefill) and leave between steps.

Owns: `DecodeBatch`, the padded state of the rows decoding together (one transformers DynamicCache, a
left-padded attention mask, each row's next position and last token), with `join` (append a prefilled
group of rows, left-padding whichever side is shorter), `keep` (drop finished or cancelled rows and the
columns no remaining row uses) and `step_inputs` (the forward arguments of one decode step).

Why by hand: transformers' `generate` fixes the batch for the whole call and its ContinuousBatchingManager
has one GenerationConfig for all requests (no per-row seed or top-p, no PEFT adapter per row) on a paged
cache; joining rows into a running DynamicCache is ~100 lines on top of its public layer tensors.

Invariants:
- Column j of the mask is 1 exactly where a row has a real (non-pad) key/value at cache position j;
  pad columns are masked, so a row's attention (hence its greedy output) does not depend on its batch
  neighbours, up to float rounding of the batched matmuls.
- Every row's query in a decode step is a real token (prefill happens per group, unpadded), so no
  attention row is ever fully masked.
- `position_ids` count only a row's own tokens (rotary positions as if the row were alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F


def _layers(cache) -> list:
    return list(cache.layers)


def supports_joining(model_config) -> bool:
    """Whether rows can join a running cache: only full-attention layers (a sliding-window layer trims its own
    cache, so its columns would not line up with the batch's mask)."""
    text = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    types = getattr(text, "layer_types", None)
    if types:
        return all(t == "full_attention" for t in types)
    return not getattr(text, "sliding_window", None)


def _pad_layers(cache, n: int) -> None:
    """Left-pad every layer's keys/values by `n` zero columns (masked by the caller's mask)."""
    if n <= 0:
        return
    for layer in _layers(cache):
        layer.keys = F.pad(layer.keys, (0, 0, n, 0))
        layer.values = F.pad(layer.values, (0, 0, n, 0))


@dataclass
class DecodeBatch:
    """The rows decoding together. `rows[i]` is the caller's object for batch row i."""

    cache: Any = None
    mask: torch.Tensor | None = None  # [B, L] long: 1 = real key/value
    positions: torch.Tensor | None = None  # [B] position id of the next token
    last: torch.Tensor | None = None  # [B] the token each row feeds next
    rows: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def join(self, cache, prompt_len: int, first_tokens: torch.Tensor, rows: list) -> None:
        """Append a group of rows that was prefilled alone (its cache holds `prompt_len` real columns per row)."""
        n = len(rows)
        device = first_tokens.device
        mask = torch.ones(n, prompt_len, dtype=torch.long, device=device)
        positions = torch.full((n,), prompt_len, dtype=torch.long, device=device)
        if not self.rows:
            self.cache, self.mask, self.positions, self.last, self.rows = cache, mask, positions, first_tokens, list(rows)
            return
        width = max(self.mask.shape[1], prompt_len)
        _pad_layers(self.cache, width - self.mask.shape[1])
        _pad_layers(cache, width - prompt_len)
        self.mask = torch.cat([F.pad(self.mask, (width - self.mask.shape[1], 0)), F.pad(mask, (width - prompt_len, 0))])
        for mine, theirs in zip(_layers(self.cache), _layers(cache)):
            mine.keys = torch.cat([mine.keys, theirs.keys])
            mine.values = torch.cat([mine.values, theirs.values])
        self.positions = torch.cat([self.positions, positions])
        self.last = torch.cat([self.last, first_tokens])
        self.rows.extend(rows)

    def keep(self, keep: list[bool]) -> None:
        """Keep only the rows flagged True; drop leading columns that are padding for every remaining row."""
        if all(keep):
            return
        if not any(keep):
            self.cache, self.mask, self.positions, self.last, self.rows = None, None, None, None, []
            return
        idx = torch.tensor([i for i, k in enumerate(keep) if k], device=self.mask.device)
        self.cache.batch_select_indices(idx)
        self.mask, self.positions, self.last = self.mask[idx], self.positions[idx], self.last[idx]
        self.rows = [r for r, k in zip(self.rows, keep) if k]
        used = self.mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        if start:
            self.mask = self.mask[:, start:]
            for layer in _layers(self.cache):
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]

    def step_inputs(self) -> dict:
        """Forward kwargs for one decode step (one new token per row; the caller adds `cache`); then `advance`."""
        ones = torch.ones(len(self.rows), 1, dtype=self.mask.dtype, device=self.mask.device)
        self.mask = torch.cat([self.mask, ones], dim=1)
        return dict(input_ids=self.last[:, None], attention_mask=self.mask, position_ids=self.positions[:, None])

    def advance(self, tokens: torch.Tensor) -> None:
        """The tokens sampled from the step's logits become each row's next input."""
        self.last = tokens
        self.positions = self.positions + 1
