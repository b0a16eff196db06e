"""Training in rounds with the other preference methods: a KTO, ORPO or SimPO run is a round's parent, and the
next round trains the same method from its adapter (init_adapter), not from a fresh LoRA.

Each method: a short run from a fresh LoRA on synthetic closer pairs (the parent), then the next round's config
from the parent (rounds.service.next_round_config: the parent's method and settings) and two runs from the CLI
that start from the parent's adapter: one with a learning rate too small to move anything, whose adapter must
equal the parent's (the start *is* the parent: a fresh LoRA would start with B = 0), one as configured, which
must move away from it.
"""

import json
import subprocess
import sys

import pytest
import torch

from alignui.paths import StorageLayout
from alignui.training.config import BASE_REFERENCE
from alignui.training.methods import get_method
from alignui.training.preflight import reference_name
from alignui.training.synthetic import closer_snapshot
from conftest import REPO

SHORT = ["--preset", "cpu-demo", "--set", "max_steps=4", "--set", "sample_prompts=0", "--set", "cpu_threads=1",
         "--set", "eval_steps=0"]


def cli(storage, *args, timeout=900):
    out = subprocess.run([sys.executable, "-m", "alignui", *args, "--storage", str(storage)], cwd=REPO,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def adapter(storage, run_id, sub=""):
    from safetensors.torch import load_file

    return load_file(storage / "runs" / run_id / "adapter" / sub / "adapter_model.safetensors")


def distance(a, b) -> float:
    return sum(float((a[k] - b[k]).norm() ** 2) for k in a) ** 0.5


def b_norm(weights) -> float:
    """The norm of the LoRA B matrices: 0 for a fresh LoRA (PEFT starts B at zero), > 0 once trained."""
    return sum(float(v.norm() ** 2) for k, v in weights.items() if "lora_B" in k) ** 0.5


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("method", ["kto", "orpo", "simpo"])
def test_the_next_round_of_a_run_trains_its_method_from_its_adapter(tmp_path, demo_model_dir, method):
    from alignui.rounds.service import next_round_config

    storage = tmp_path / "storage"
    closer_snapshot(storage, "closer", train_rows=48, test_rows=8, seed=0)
    parent = cli(storage, "train", method, "--snapshot", "closer", *SHORT)
    assert parent["status"] == "done"
    round_method, config = next_round_config(StorageLayout(storage), parent["run"])
    assert (round_method, config.init_adapter, config.parent_run) == (method, parent["run"], parent["run"])
    start = ["--set", f"init_adapter={parent['run']}", "--set", f"parent_run={parent['run']}"]

    still = cli(storage, "train", method, "--snapshot", "closer", *SHORT, *start, "--set", "learning_rate=1e-20")
    w0, w1 = adapter(storage, parent["run"]), adapter(storage, still["run"])
    assert w0.keys() == w1.keys() and b_norm(w0) > 0
    assert distance(w1, w0) < 1e-6 * b_norm(w0)  # a fresh LoRA would be b_norm(w0) away (its B is zero)

    moved = cli(storage, "train", method, "--snapshot", "closer", *SHORT, *start)
    w2 = adapter(storage, moved["run"])
    print(f"{method}: |round 2 - parent| = {distance(w2, w0):.4g}, |parent's B| = {b_norm(w0):.4g}, "
          f"|tiny-lr run - parent| = {distance(w1, w0):.3g}")
    assert moved["status"] == "done" and distance(w2, w0) > 0
    lineage = json.loads((storage / "runs" / moved["run"] / "lineage.json").read_text())
    assert lineage["parent_run"] == parent["run"]  # its round is the parent's + 1 (runs.round_numbers)
    if method == "kto":  # with a reference, TRL trains against a frozen copy of the starting adapter
        ref = adapter(storage, moved["run"], "ref")
        assert all(torch.equal(ref[k], w0[k]) for k in w0)


def test_the_pre_flight_names_the_reference_a_run_compares_with():
    dpo, kto, orpo = (get_method(m).config_class() for m in ("dpo", "kto", "orpo"))
    assert reference_name(dpo()) == BASE_REFERENCE == reference_name(kto())
    assert "frozen copy of the starting adapter run-1" in reference_name(dpo(init_adapter="run-1"))
    assert "frozen copy of the starting adapter run-1" in reference_name(kto(init_adapter="run-1"))
    assert reference_name(orpo(init_adapter="run-1")).startswith("none")
    assert reference_name(dpo(precompute_ref_log_probs=True)).startswith("none")
