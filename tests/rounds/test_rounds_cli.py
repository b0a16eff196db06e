"""Two full rounds of training in rounds on the demo model, from the command line, as a user would type them.

    train dpo (round 1, short on purpose: the property is still rare) -> round --parent R1 (pairs from R1's
    adapter, both sides sampled with different seeds, voted by the synthetic oracle, exported with the
    parent's snapshot mixed in) -> train dpo from R1's adapter on that snapshot (round 2)
    -> arena battles among base, round 1 and round 2 -> stats lists the three with their lineage.

Checks: the lineage chain in every run and snapshot, the round's pairs as ordinary queued annotate pairs
(source round:<R1>, meta round/parent), round 2 started from round 1's adapter (not a fresh LoRA), and the
held-out property (answers ending with demo_corpus.POLITE_CLOSER) keeps or improves from round 1 to 2.
"""

import json
import random
import subprocess
import sys

import pytest
import torch

from alignui.serving.demo_corpus import POLITE_CLOSER
from alignui.training.synthetic import closer_rate, closer_snapshot, split_prompts
from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # three CLI jobs and generation on a shared CPU
HELD_OUT = 110
ROUND1 = ["--preset", "cpu-demo", "--set", "max_steps=20", "--set", "sample_prompts=0", "--set", "cpu_threads=1"]


def cli(storage, *args, timeout=900):
    out = subprocess.run([sys.executable, "-m", "alignui", *args, "--storage", str(storage)], cwd=REPO,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_prompts(path, prompts):
    path.write_text("".join(json.dumps({"prompt": q}) + "\n" for q, _ in prompts))
    return path


@pytest.fixture(scope="module")
def chain(tmp_path_factory, demo_model_dir):
    root = tmp_path_factory.mktemp("rounds")
    storage = root / "storage"
    closer_snapshot(storage, "closer", train_rows=400, test_rows=40, held_out=HELD_OUT, seed=0)
    train, held = split_prompts(random.Random(0), HELD_OUT)  # the snapshot's own split
    cli(storage, "import", str(write_prompts(root / "pool.jsonl", train)), "--format", "prompts")
    cli(storage, "import", str(write_prompts(root / "held.jsonl", held)), "--format", "prompts", "--split", "heldout")
    r1 = cli(storage, "train", "dpo", "--snapshot", "closer", *ROUND1)
    rnd = cli(storage, "round", "--parent", r1["run"], "--prompts", "64", "--judge", "oracle-closer",
              "--mix-old", "0.25", "--max-new-tokens", "64", "--threads", "1")
    r2 = cli(storage, "train", "dpo", "--snapshot", rnd["snapshot"], *ROUND1, "--set", f"init_adapter={r1['run']}",
             "--set", f"parent_run={r1['run']}")
    return storage, r1, rnd, r2, [q for q, _ in held]


def test_the_round_queues_pairs_from_the_parent_adapter_and_exports_them_with_lineage(chain):
    from alignui.db import Store

    storage, r1, rnd, r2, _ = chain
    print(f"round 2 pairs: {rnd['pairs']}, oracle verdicts {rnd['judged']}, snapshot {rnd['snapshot']} "
          f"({rnd['rows']} rows, {rnd['lineage']['mixed_rows']} from the parent's snapshot)")
    assert rnd["round"] == 2 and rnd["parent_run"] == r1["run"] and rnd["queued"] == 64
    assert rnd["pairs"]["pairs"] == 64 and rnd["pairs"]["pending"] == 0 and rnd["pairs"]["pairs_ab"] > 5
    manifest = json.loads((storage / "snapshots" / rnd["snapshot"] / "manifest.json").read_text())
    assert manifest["lineage"]["parent_run"] == r1["run"] and manifest["lineage"]["round"] == 2
    assert manifest["lineage"]["parent_snapshot"] == "closer" and manifest["lineage"]["mixed_rows"] == 100  # 25% of 400
    assert manifest["lineage"]["judge"] == "oracle-closer"
    round_only = storage / "snapshots" / manifest["lineage"]["round_snapshot"] / "manifest.json"
    assert json.loads(round_only.read_text())["filters"]["sources"] == [f"round:{r1['run']}"]
    with Store(storage / "alignui.duckdb") as store:
        rows = store.query("SELECT c.kind, c.source, c.annotator, c.meta, ga.model_ref, gb.model_ref, p.split "
                           "FROM comparisons c JOIN generations ga ON ga.id = c.gen_a JOIN generations gb "
                           "ON gb.id = c.gen_b JOIN prompts p ON p.id = c.prompt_id")
    assert len(rows) == 64
    for kind, source, annotator, meta, ref_a, ref_b, split in rows:
        assert (kind, source, ref_a, ref_b, split) == ("annotate", f"round:{r1['run']}", r1["run"], r1["run"], "train")
        assert json.loads(meta)["round"] == 2 and annotator.startswith("oracle:")  # labelled: not a human vote


def test_each_run_records_the_chain_and_round_two_starts_from_round_ones_adapter(chain):
    from safetensors.torch import load_file

    storage, r1, rnd, r2, _ = chain
    l1 = json.loads((storage / "runs" / r1["run"] / "lineage.json").read_text())
    l2 = json.loads((storage / "runs" / r2["run"] / "lineage.json").read_text())
    assert (l1["round"], l1["parent_run"], l1["snapshot"]) == (1, None, "closer")
    assert (l2["round"], l2["parent_run"], l2["snapshot"]) == (2, r1["run"], rnd["snapshot"])
    assert r2["status"] == "done" and r2["params_moved"] > 0
    w1 = load_file(storage / "runs" / r1["run"] / "adapter" / "adapter_model.safetensors")
    w2 = load_file(storage / "runs" / r2["run"] / "adapter" / "adapter_model.safetensors")
    ref = load_file(storage / "runs" / r2["run"] / "adapter" / "ref" / "adapter_model.safetensors")
    # TRL copies the adapter a run starts from as its frozen reference ("ref"): round 1's weights, exactly
    assert w1.keys() == w2.keys() == ref.keys() and all(torch.equal(w1[k], ref[k]) for k in w1)
    moved = sum(float((w2[k] - w1[k]).norm() ** 2) for k in w1) ** 0.5
    print(f"|round 2 - round 1| = {moved:.4f}")
    assert moved > 0


def test_the_held_out_property_keeps_or_improves_from_round_one_to_round_two(chain, demo_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    storage, r1, rnd, r2, held = chain
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    rates = {}
    for name, adapter in (("base", None), ("round 1", r1["adapter"]), ("round 2", r2["adapter"])):
        model = AutoModelForCausalLM.from_pretrained(demo_model_dir, dtype=torch.float32).eval()
        if adapter:
            model = PeftModel.from_pretrained(model, adapter).eval()
        rates[name] = closer_rate(model, tokenizer, held)
    print(f"'{POLITE_CLOSER}' at the end of held-out samples: " + ", ".join(f"{k} {v:.1%}" for k, v in rates.items()))
    assert rates["round 1"] > rates["base"]
    assert rates["round 2"] >= rates["round 1"]


def test_the_arena_battles_any_two_rounds_and_stats_lists_the_three_with_their_lineage(chain):
    from alignui.arena.battle import ArenaSettings, stream_battle
    from alignui.db import Store
    from alignui.rounds.oracle import oracle_verdict
    from alignui.runs import list_run_dirs
    from alignui.paths import StorageLayout
    from alignui.serving.adapters import AdapterServer
    from alignui.serving.generation import PairSettings
    from alignui.serving.loading import ModelHandle, load_pretrained
    from alignui.training.app.runner import index_row
    from alignui.arena.battle import vote

    storage, r1, rnd, r2, held = chain
    base = json.loads((storage / "runs" / r1["run"] / "lineage.json").read_text())["base_model_path"]
    model, tokenizer, dtype = load_pretrained(base, "cpu")
    handle = ModelHandle(model, tokenizer, base, "cpu", dtype)
    rng = random.Random(0)
    settings = ArenaSettings(mode="fewest_battles", sampling=PairSettings.same(max_new_tokens=64))
    met = set()
    with Store(storage / "alignui.duckdb") as store:
        for run in list_run_dirs(StorageLayout(storage)):
            store.upsert_run(run.id, **index_row(run))  # what the app's runs index does on start
        server = AdapterServer(handle)
        for i in range(9):
            messages = [{"role": "user", "content": held[i]}]
            *_, last = stream_battle(store, server, messages, rng, settings=settings, annotator="tester")
            battle = store.get_comparison(last.battle_id)
            met.add(frozenset((battle.model_a, battle.model_b)))
            vote(store, last.battle_id, oracle_verdict(battle.text_a, battle.text_b), annotator="tester")
    handle.close()
    assert met == {frozenset(p) for p in (("base", r1["run"]), ("base", r2["run"]), (r1["run"], r2["run"]))}
    stats = cli(storage, "stats", "--bootstrap", "50")
    lineage = {m["model"]: m.get("lineage") for m in stats["models"]}
    print(f"leaderboard: {[(m['model'], m['lineage'], round(m['rating'])) for m in stats['models']]}")
    assert lineage == {"base": "base", r1["run"]: "round 1 ← base", r2["run"]: f"round 2 ← {r1['run']}"}
