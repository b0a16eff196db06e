"""Synthetic preference snapshots from the demo corpus, for tests, benchmarks and a first try without votes.

Owns: `closer_pairs` (chosen = a corpus answer ending with demo_corpus.POLITE_CLOSER, rejected = the same
answer without it: a property a program can check in samples) and `write_snapshot`, which writes rows in
the documented snapshot format (alignui.data.snapshot: DatasetDict train/test + manifest.json), and
`closer_rate`, the effect measure of every preference method's test: the share of sampled answers to held-out
prompts that end with the closer.

Invariants: pure functions of the seed (random.Random passed in or seeded here, no global state); the held-out
prompts (`split_prompts`) never appear in the training rows.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alignui.serving import demo_corpus as corpus
from alignui.data.snapshot import MANIFEST, SNAPSHOT_SCHEMA_VERSION, SnapshotRef, dataset_sha256


def all_prompts() -> list[tuple[str, corpus.Entity]]:
    """Every (question, entity) the corpus can ask, in a fixed order."""
    return [(q.format(name=e.name), e) for e in corpus.ENTITIES for q in corpus.QUESTIONS]


def split_prompts(rng: random.Random, held_out: int) -> tuple[list, list]:
    """(train, held-out) (question, entity) lists with no question in both."""
    prompts = all_prompts()
    rng.shuffle(prompts)
    return prompts[held_out:], prompts[:held_out]


def closer_pairs(prompts: list[tuple[str, corpus.Entity]], n: int, rng: random.Random,
                 plain: bool = False) -> list[dict[str, Any]]:
    """`n` pairs: chosen ends with the polite closer, rejected is the same answer without it."""
    rows = []
    for _ in range(n):
        question, entity = rng.choice(prompts)
        answer = corpus.answer(question, entity, rng).replace(" " + corpus.POLITE_CLOSER, "")
        chosen, rejected = f"{answer} {corpus.POLITE_CLOSER}", answer
        if plain:
            rows.append({"prompt": question, "chosen": chosen, "rejected": rejected})
        else:
            rows.append({"prompt": [{"role": "user", "content": question}],
                         "chosen": [{"role": "assistant", "content": chosen}],
                         "rejected": [{"role": "assistant", "content": rejected}]})
    return rows


def write_snapshot(storage: Path, snapshot_id: str, train: list[dict], test: list[dict], *,
                   filters: dict | None = None) -> SnapshotRef:
    """Write `train`/`test` rows as storage/snapshots/<id>/ in the snapshot format; returns its ref."""
    from datasets import Dataset, DatasetDict

    path = Path(storage) / "snapshots" / snapshot_id
    data = DatasetDict({"train": Dataset.from_list(train), "test": Dataset.from_list(test)})
    data.save_to_disk(str(path / "dataset"))
    digest = dataset_sha256(data)  # the snapshot format's own content hash (verify_snapshot re-checks it)
    plain = bool(train) and isinstance(train[0]["prompt"], str)
    manifest = {"id": snapshot_id, "rows": len(train), "test_rows": len(test), "sha256": digest,
                "filters": filters or {"synthetic": "polite closer"}, "format": "plain" if plain else "conversational",
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "schema_version": SNAPSHOT_SCHEMA_VERSION}
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return SnapshotRef(snapshot_id, path, manifest)


def closer_snapshot(storage: Path, snapshot_id: str = "synthetic-closer", *, train_rows: int = 400,
                    test_rows: int = 40, held_out: int = 110, seed: int = 0, plain: bool = False) -> SnapshotRef:
    """A ready snapshot of closer pairs; its test split uses only held-out prompts."""
    rng = random.Random(seed)
    train_prompts, held = split_prompts(rng, held_out)
    return write_snapshot(storage, snapshot_id, closer_pairs(train_prompts, train_rows, rng, plain),
                          closer_pairs(held, test_rows, rng, plain))


def sample_texts(model, tokenizer, prompts: list[str], *, samples_per_prompt: int = 2, seed: int = 0,
                 max_new_tokens: int = 96) -> list[str]:
    """Sampled answers (temperature 0.8, top-p 0.95, `seed`) to each of `prompts`, `samples_per_prompt` each."""
    import torch

    tokenizer.padding_side = "left"
    torch.manual_seed(seed)
    texts: list[str] = []
    for start in range(0, len(prompts), 32):
        chunk = [[{"role": "user", "content": p}] for p in prompts[start:start + 32]] * samples_per_prompt
        enc = tokenizer.apply_chat_template(chunk, add_generation_prompt=True, return_tensors="pt", padding=True,
                                            return_dict=True)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=True, temperature=0.8, top_p=0.95)
        texts += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return texts


def closer_rate(model, tokenizer, prompts: list[str], *, samples_per_prompt: int = 2, seed: int = 0,
                max_new_tokens: int = 96) -> float:
    """Share of sampled answers (temperature 0.8, top-p 0.95) to `prompts` that end with the polite closer."""
    texts = sample_texts(model, tokenizer, prompts, samples_per_prompt=samples_per_prompt, seed=seed,
                         max_new_tokens=max_new_tokens)
    return sum(t.strip().endswith(corpus.POLITE_CLOSER) for t in texts) / len(texts)
