"""ORPO, SimPO and KTO without training: the registry (and a TRL that lacks a trainer), configs and presets,
the generated form, KTO's unpaired data and class weights, prompt-end truncation inside their TRL trainers, and
the pre-flight (one model and no reference pass for the reference-free methods; one-class snapshots refused)."""

import random

import pytest

from alignui.cli.main import build_parser
from alignui.errors import UserError
from alignui.training import methods as registry
from alignui.training.app import panel
from alignui.training.config import build_config, preset_names
from alignui.training.dpo import DPOTrainConfig
from alignui.training.kto import KTOTrainConfig, kto_verdict, label_counts, unpaired_rows
from alignui.training.preflight import check
from alignui.training.reference_free import ORPOTrainConfig, SimPOTrainConfig
from alignui.training.synthetic import closer_pairs, closer_snapshot, split_prompts, write_snapshot

NEW = ("orpo", "simpo", "kto")


def test_new_methods_are_registered_available_and_on_the_command_line():
    for name in NEW:
        method = registry.get_method(name)
        assert method.available and method.unavailable_reason is None and method.help
        thumbs = ["cpu-demo-thumbs"] if name == "kto" else []  # KTO's preset for a thumbs-only snapshot
        assert preset_names(method.presets_path) == ["cpu-demo", *thumbs, "gpu-lora", "gpu-qlora"]
        for preset in ("cpu-demo", "gpu-lora", "gpu-qlora"):
            build_config(method.config_class(), config_file=method.presets_path, preset=preset)
        assert build_parser().parse_args(["train", name]).method == name
    assert {"orpo", "simpo", "kto"} <= {m.name for m in registry.available_methods()}


def test_a_trainer_that_trl_moved_or_dropped_is_one_line_not_an_import_error(monkeypatch):
    gone = registry.Method("orpo2", "ORPO", "alignui.training.reference_free:ORPOTrainConfig",
                           "alignui.training.reference_free:run_orpo", "orpo.yaml",
                           needs=("trl.experimental.no_such_orpo:ORPOTrainer",))
    reason = gone.unavailable_reason
    assert not gone.available and "\n" not in reason
    assert "needs trl.experimental.no_such_orpo.ORPOTrainer, which trl" in reason and "pick another method" in reason
    with pytest.raises(registry.MethodUnavailable, match="TRL moved or dropped it"):
        registry.load_trl("trl:NoSuchTrainer", "orpo2")
    monkeypatch.setattr(registry, "METHODS", (*registry.METHODS, gone))
    assert "orpo2" not in {m.name for m in registry.available_methods()}
    from alignui.training import job

    monkeypatch.setattr(job, "get_method", registry.get_method)
    with pytest.raises(UserError, match="no_such_orpo"):
        job.execute("orpo2", storage=".")


@pytest.mark.parametrize("cls, values, fragment", [
    (ORPOTrainConfig, {"beta": 0}, "beta must be positive"),
    (SimPOTrainConfig, {"beta": -1}, "beta must be positive"),
    (SimPOTrainConfig, {"simpo_gamma": -0.1}, "simpo_gamma must be 0 or more"),
    (SimPOTrainConfig, {"sft_weight": -1}, "sft_weight must be 0 or more"),
    (KTOTrainConfig, {"beta": 0}, "beta must be positive"),
    (KTOTrainConfig, {"desirable_weight": 0}, "desirable_weight must be positive or empty"),
])
def test_configs_refuse_bad_values_in_one_line(cls, values, fragment):
    with pytest.raises(UserError, match=fragment):
        cls.from_mapping(values)


def test_configs_map_onto_trl_and_the_form_shows_each_methods_own_knobs():
    simpo = SimPOTrainConfig(sft_weight=0.2)
    assert simpo.trl_arguments() == {"loss_type": "simpo", "beta": 2.0, "simpo_gamma": 0.5, "cpo_alpha": 0.2}
    assert "DPO-sized" in " ".join(SimPOTrainConfig(beta=0.1).warnings())
    assert ORPOTrainConfig().trl_arguments() == {"beta": 0.1}
    specs = {s.name: s for s in panel.form_fields([registry.get_method(n) for n in ("dpo", *NEW)])}
    assert specs["simpo_gamma"].methods == ("simpo",) and specs["beta"].methods == ("dpo", *NEW)
    assert specs["desirable_weight"].optional and "class balance" in specs["desirable_weight"].help
    assert panel.method_about("simpo").startswith("**SimPO") and "no reference model" in panel.method_about("orpo")
    config = panel.config_from_form("kto", {**panel.preset_values("kto", "cpu-demo"), "desirable_weight": None})
    assert config.desirable_weight is None and config.max_steps == 80


def test_kto_weights_follow_the_class_balance_unless_set():
    assert KTOTrainConfig().class_weights(100, 100) == (1.0, 1.0)
    assert KTOTrainConfig().class_weights(50, 200) == (4.0, 1.0)  # the rarer class pulls as hard as the other
    assert KTOTrainConfig().class_weights(300, 100) == (1.0, 3.0)
    assert KTOTrainConfig(desirable_weight=2.0).class_weights(50, 200) == (2.0, 0.5)
    assert KTOTrainConfig(desirable_weight=1.0, undesirable_weight=1.5).class_weights(50, 200) == (1.0, 1.5)


def test_pairs_become_one_desirable_and_one_undesirable_example_shuffled(storage):
    from datasets import Dataset

    pairs = Dataset.from_list(closer_pairs(split_prompts(random.Random(0), 10)[0], 20, random.Random(1)))
    rows = unpaired_rows(pairs, seed=3)
    assert len(rows) == 40 and sum(r["label"] for r in rows) == 20 and rows == unpaired_rows(pairs, seed=3)
    assert {r["completion"][0]["content"] for r in rows if r["label"]} == {p[0]["content"] for p in pairs["chosen"]}
    assert set(rows[0]) == {"prompt", "completion", "label"} and label_counts(pairs) == (20, 20)
    halves = sum(rows[i]["prompt"] == rows[i + 1]["prompt"] for i in range(0, 40, 2))
    assert halves < 10  # a pair's two halves are not kept side by side (they would pair up in KTO's KL term)
    assert label_counts(Dataset.from_list(rows[:7])) == (sum(r["label"] for r in rows[:7]),
                                                         7 - sum(r["label"] for r in rows[:7]))


def thumbs_snapshot(storage, name, labels):
    rows = [{"prompt": [{"role": "user", "content": f"Question {i}?"}],
             "completion": [{"role": "assistant", "content": f"Answer {i}."}], "label": label}
            for i, label in enumerate(labels)]
    return write_snapshot(storage, name, rows, rows[:2], filters={"synthetic": "thumbs"})


def test_preflight_refuses_one_label_class_and_unpaired_rows_for_pair_methods(storage):
    only_up = thumbs_snapshot(storage, "up", [True] * 6)
    report, _, _ = check(KTOTrainConfig(base_model="demo"), storage, only_up)
    assert not report.ok and len(report.refusals) == 1
    assert "only desirable examples (6) and no undesirable ones" in report.refusals[0]
    with pytest.raises(UserError, match="KTO learns from the contrast"):
        report.raise_if_refused()
    mixed = thumbs_snapshot(storage, "mixed", [True, False, True, True])
    report, _, _ = check(KTOTrainConfig(base_model="demo"), storage, mixed)
    assert report.ok and report.rows == 4 and report.measured_rows == 4
    report, _, _ = check(DPOTrainConfig(base_model="demo"), storage, mixed)
    assert not report.ok and "only KTO trains on those" in report.refusals[0]


def test_preflight_warns_when_batches_rarely_hold_the_rare_class(storage):
    rare = thumbs_snapshot(storage, "rare", [i % 12 == 0 for i in range(48)])  # 4 desirable of 48 (8%)
    small = check(KTOTrainConfig(base_model="demo", per_device_train_batch_size=8), storage, rare)[0]
    assert small.ok and len([w for w in small.warnings if "desirable" in w]) == 1
    warning = next(w for w in small.warnings if "desirable" in w)
    assert "only 8% of the training examples are desirable: 50% of batches of 8 hold none" in warning
    assert "per_device_train_batch_size to 12 or more" in warning and "cpu-demo-thumbs" in warning
    big = check(KTOTrainConfig(base_model="demo", per_device_train_batch_size=16), storage, rare)[0]
    assert big.ok and not any("desirable" in w for w in big.warnings)
    pairs = closer_snapshot(storage, "pairs", train_rows=12, test_rows=2)  # a pair is one example of each class
    assert not any("desirable" in w for w in check(KTOTrainConfig(base_model="demo"), storage, pairs)[0].warnings)


def test_reference_free_methods_count_one_model_and_no_reference_pass(storage):
    ref = closer_snapshot(storage, "s", train_rows=12, test_rows=2)
    shared = {"base_model": "demo", "max_length": 256, "max_prompt_length": 128, "per_device_train_batch_size": 8}
    reports = {name: check(registry.get_method(name).config_class().from_mapping(shared), storage, ref)[0]
               for name in ("dpo", "kto", "orpo", "simpo")}
    for name in ("dpo", "kto"):
        assert "reference pass" in reports[name].memory_parts and "adapters off" in reports[name].reference
    for name in ("orpo", "simpo"):
        report = reports[name]
        assert report.ok and "reference pass" not in report.memory_parts and report.reference.startswith("none")
        assert report.memory_bytes < reports["dpo"].memory_bytes and "no reference pass" in report.markdown()
    precomputed = check(DPOTrainConfig.from_mapping({**shared, "precompute_ref_log_probs": True}), storage, ref)[0]
    assert "reference pass" not in precomputed.memory_parts


def test_orpo_and_simpo_tokenization_keep_the_end_of_long_prompts(demo_model_dir):
    from transformers import AutoTokenizer

    from alignui.training.methods import load_trl
    from alignui.training.reference_free import CPO_TRAINER, ORPO_TRAINER
    from alignui.training.trl_internals import keep_prompt_end_row_trainer

    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    history = [{"role": "user", "content": "Tell me about the ocean. " * 30},
               {"role": "assistant", "content": "The ocean is blue."}, {"role": "user", "content": "What color is snow?"}]
    prompt = tok.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    for path in (ORPO_TRAINER, CPO_TRAINER):
        trainer = object.__new__(keep_prompt_end_row_trainer(load_trl(path, "test"), tok, 24))
        trainer.processing_class, trainer.is_encoder_decoder, trainer.max_length = tok, False, 64
        row = trainer.tokenize_row({"prompt": prompt, "chosen": "Snow is white.", "rejected": "No."})
        assert 23 <= len(row["prompt_input_ids"]) <= 25 and "What color is snow?" in tok.decode(row["prompt_input_ids"])
        assert "Snow is white." in tok.decode(row["chosen_input_ids"]) and len(row["chosen_input_ids"]) <= 64


def test_kto_tokenization_keeps_the_end_of_long_prompts(tmp_path, demo_model_dir):
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import KTOConfig, KTOTrainer

    from alignui.training.trl_internals import keep_prompt_end_trainer

    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    row = {"prompt": [{"role": "user", "content": "Tell me about the ocean. " * 30},
                      {"role": "assistant", "content": "The ocean is blue."},
                      {"role": "user", "content": "What color is snow?"}],
           "completion": [{"role": "assistant", "content": "Snow is white."}], "label": True}
    trainer = object.__new__(keep_prompt_end_trainer(KTOTrainer))
    trainer.max_prompt_length, trainer._tokenizer, trainer.calculate_KL = 24, tok, True
    args = KTOConfig(output_dir=str(tmp_path), max_length=64, report_to="none", use_cpu=True, bf16=False,
                     per_device_train_batch_size=2)
    out = trainer._prepare_dataset(Dataset.from_list([row, {**row, "label": False}]), tok, args, "train")
    ids = out[0]["prompt_ids"]
    assert len(out) == 2 and len(ids) == 24 and "What color is snow?" in tok.decode(ids) and args.max_length == 64
    assert out[0]["KL_completion_ids"] == out[1]["completion_ids"]  # KL pairs: completions rotated in the batch


def test_kto_verdict_reads_the_held_out_margin():
    good = {"eval_rewards/chosen": 0.15, "eval_rewards/rejected": -0.18, "eval_rewards/margins": 0.33}
    assert kto_verdict(good, 80).startswith("✅ learned the preference: held-out reward +0.150 for desirable")
    bad = {"eval_rewards/chosen": -0.1, "eval_rewards/rejected": 0.0, "eval_rewards/margins": -0.1}
    assert kto_verdict(bad, 80).startswith("❌") and kto_verdict({}, 0).startswith("ℹ️ no held-out")


def test_cli_refuses_a_one_class_snapshot_for_kto_in_one_line(storage):
    from cli.test_cli import run_cli

    thumbs_snapshot(storage, "down", [False] * 5)
    out = run_cli("train", "kto", "--snapshot", "down", "--preset", "cpu-demo", storage=storage)
    assert out.returncode == 2 and out.stdout == "", out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1].startswith(
        "error: pre-flight refused the run: the snapshot has only undesirable examples (5) and no desirable ones")
    assert not (storage / "runs").exists() or not any((storage / "runs").iterdir())


def test_the_arena_serves_the_adapters_of_every_adapter_method():
    from alignui.db.runs import ADAPTER_METHODS

    assert set(ADAPTER_METHODS) == {m.name for m in registry.METHODS if m.produces_adapter}
