"""KTO from thumbs alone, end to end on the demo model on CPU: the demo model answers each training prompt twice
(sampled, as the Thumbs tab does), the synthetic property oracle gives each response a thumb (up when it ends with
demo_corpus.POLITE_CLOSER, down otherwise) through the Store as an annotator would, the thumbs are exported as a
snapshot (no pairs at all), and `python -m alignui train kto --preset cpu-demo-thumbs` trains on it with the
weights set from the (very unbalanced) class balance. Effect: the share of sampled answers to held-out prompts that
end with the closer moves from below 20% to above 60%, the issue's bar (as for DPO from pairs).

Each run's snapshot has fresh random row ids, so its train/test split and batches differ from run to run: the
preset was chosen over 6 such runs (94.1%-99.1%; the same learning rate at batch 8 and 80 steps: 5.5%-95.5%; see
configs/kto.yaml)."""

import json
import random
import shutil

import pytest
import torch

from alignui.data.export import ExportOptions, export_snapshot
from alignui.db import NewGeneration, Store
from alignui.paths import StorageLayout
from alignui.serving import demo_corpus as corpus
from alignui.training.synthetic import closer_rate, sample_texts, split_prompts
from data.test_export_snapshot import ADMIN
from training.test_train_dpo import HELD_OUT, run_train

pytestmark = pytest.mark.slow


def rate_with_the_oracle(storage, model, tokenizer, prompts) -> tuple[int, int]:
    """Two sampled responses per prompt, each saved pending for 'oracle' and rated by the closer property."""
    texts = sample_texts(model, tokenizer, prompts, samples_per_prompt=2, seed=1)
    with Store(StorageLayout(storage).ensure().db_path) as store:
        for prompt, text in zip(prompts * 2, texts):  # sample_texts answers the prompts in order, twice over
            item = store.save_single([{"role": "user", "content": prompt}], NewGeneration("base", text),
                                     annotator="oracle")
            store.rate(item.id, "up" if text.strip().endswith(corpus.POLITE_CLOSER) else "down", annotator="oracle")
        counts = store.rating_counts()
        export_snapshot(store, StorageLayout(storage), ExportOptions(test_size=0.1), ADMIN)
    return counts["up"], counts["down"]


def test_kto_on_thumbs_alone_raises_the_preferred_property_on_held_out_prompts(tmp_path, demo_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    storage = tmp_path / "storage"
    shutil.copytree(demo_model_dir, storage / "models" / "demo")
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32).eval()
    train, held = split_prompts(random.Random(0), HELD_OUT)
    up, down = rate_with_the_oracle(storage, model, tokenizer, [q for q, _ in train])
    assert up > 10 and down > up, (up, down)  # both classes, the desirable one rare: the weights matter

    out = run_train(storage, "--preset", "cpu-demo-thumbs", "--set", "seed=42", method="kto")
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    log = (storage / "runs" / summary["run"] / "log.txt").read_text()
    assert "KTO: " in log and "desirable and" in log and "-> weights" in log
    assert summary["status"] == "done" and summary["params_moved"] > 0.01

    held_prompts = [q for q, _ in held]
    before = closer_rate(model, tokenizer, held_prompts)
    tuned = PeftModel.from_pretrained(model, summary["adapter"]).eval()
    after = closer_rate(tuned, tokenizer, held_prompts)
    print(f"kto from thumbs: {up} up / {down} down; the closer at the end of held-out samples: base {before:.1%} -> "
          f"adapter {after:.1%}; {summary['verdict']}")
    assert before < 0.2 and after > 0.6  # the effect bar, as for DPO
