"""The pieces around a DPO run, without training: prompt-end truncation (inside TRL's tokenization too),
the pre-flight report, dtype guard, verdict and watch-outs, the Train tab's form and live view, the model card
and the hub push (the hub is the one thing mocked: there is no network to it here)."""

import json

import pytest
import torch

from alignui.errors import UserError
from alignui.team.identity import Identity, PermissionDenied
from alignui.paths import StorageLayout
from alignui.training import evaluation
from alignui.training import push as hub
from alignui.training.app import panel
from alignui.training.common import Setup, check_dtypes, fix_trainable_dtype, keep_prompt_end, resolve_setup
from alignui.training.dpo import DPOTrainConfig
from alignui.training.methods import get_method
from alignui.training.preflight import check
from alignui.runs import RunDir
from alignui.training.synthetic import closer_snapshot

ADMIN = Identity("ada", "admin")


def test_keep_prompt_end_keeps_the_latest_tokens_and_a_leading_bos():
    assert keep_prompt_end([1, 2, 3, 4, 5], 3) == [3, 4, 5]
    assert keep_prompt_end([9, 2, 3, 4, 5], 3, keep_first=9) == [9, 4, 5]
    assert keep_prompt_end([1, 2], 3) == [1, 2] and keep_prompt_end([1, 2, 3], None) == [1, 2, 3]


def test_trl_tokenization_keeps_the_end_of_long_prompts(storage, demo_model_dir):
    """A long multi-turn prompt is cut from the front, so its last question survives; the pair is kept."""
    from transformers import AutoTokenizer
    from trl import DPOConfig

    from alignui.training.dpo import trainer_class

    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    history = [{"role": "user", "content": "Tell me about the ocean. " * 30},
               {"role": "assistant", "content": "The ocean is blue."}]
    row = {"prompt": history + [{"role": "user", "content": "What color is snow?"}],
           "chosen": [{"role": "assistant", "content": "Snow is white."}],
           "rejected": [{"role": "assistant", "content": "No."}]}
    trainer = object.__new__(trainer_class())  # only the dataset preparation is exercised
    trainer.max_prompt_length, trainer._tokenizer = 24, tok
    from datasets import Dataset

    args = DPOConfig(output_dir=str(storage / "x"), max_length=64, report_to="none", use_cpu=True, bf16=False)
    out = trainer._prepare_dataset(Dataset.from_list([row]), tok, args, "train")
    ids = out[0]["prompt_ids"]
    assert len(out) == 1 and len(ids) == 24 and "What color is snow?" in tok.decode(ids)
    assert args.max_length == 64


def test_preflight_counts_truncation_estimates_memory_and_refuses_clearly(storage):
    ref = closer_snapshot(storage, "s", train_rows=30, test_rows=5)
    report, setup, base = check(DPOTrainConfig.from_mapping({"base_model": "demo", "max_length": 16,
                                                             "max_prompt_length": 12}), storage, ref)
    assert report.ok and setup.device == "cpu" and setup.dtype == torch.float32 and base.endswith("demo")
    assert report.rows == 30 and report.test_rows == 5 and report.truncated == 30 and report.lost_whole == 0
    assert report.prompt_truncated > 0 and report.memory_bytes > 0 and report.n_params > 0
    assert "every pair is cut at max_length=16" in " ".join(report.warnings)
    text = report.markdown()
    assert "30" in text and "estimated memory" in text and "✅ ready" in text
    report, setup, _ = check(DPOTrainConfig.from_mapping({"base_model": "demo", "load_in_4bit": True}), storage, ref)
    assert setup is None and "4-bit loading needs a CUDA GPU" in report.refusals[0] and "⛔" in report.markdown()
    with pytest.raises(UserError, match="pre-flight refused the run: 4-bit"):
        report.raise_if_refused()


def test_rlhf_preflight_counts_each_resident_reward_model(storage):
    from alignui.training.rlhf import RLHFTrainConfig

    ref = closer_snapshot(storage, "s", train_rows=20, test_rows=4)
    dpo, _, _ = check(DPOTrainConfig.from_mapping({"base_model": "demo"}), storage, ref)
    one, _, _ = check(RLHFTrainConfig.from_mapping({"base_model": "demo"}), storage, ref)
    two, _, _ = check(RLHFTrainConfig.from_mapping({"base_model": "demo", "reward_model": "rm-a,rm-b"}), storage, ref)
    weights = dpo.memory_parts["weights"]  # fp32 on CPU: a reward model of the same base is one more copy
    assert "reward model" not in dpo.memory_parts and one.memory_parts["reward model"] == weights
    assert two.memory_parts["reward model 1"] == two.memory_parts["reward model 2"] == weights
    assert two.memory_bytes > one.memory_bytes and "reward model 2" in two.markdown()


def test_dtype_follows_the_device_and_mismatches_are_refused():
    setup = resolve_setup(DPOTrainConfig.from_mapping({"device": "cpu"}))
    assert setup.dtype == torch.float32 and not setup.gradient_checkpointing and not setup.quantized
    model = torch.nn.Linear(2, 2)

    class Args:
        bf16 = fp16 = False

    check_dtypes(model, setup, Args())
    bf16_setup = Setup(device="cuda", dtype=torch.bfloat16, quantized=False, gradient_checkpointing=True)
    with pytest.raises(RuntimeError, match="need torch.bfloat16 autocast"):
        check_dtypes(model.to(torch.bfloat16), bf16_setup, Args())
    Args.bf16 = True
    check_dtypes(model, bf16_setup, Args())
    with pytest.raises(RuntimeError, match="computes in torch.float32"):
        check_dtypes(model, setup, Args())
    # QLoRA on an fp16-only GPU: TRL's bf16 LoRA weights become fp32 master weights under fp16 autocast
    fp16_qlora = Setup(device="cuda", dtype=torch.float16, quantized=True, gradient_checkpointing=True)
    lora = torch.nn.Linear(2, 2).to(torch.bfloat16)
    fix_trainable_dtype(lora, fp16_qlora)
    Args.bf16, Args.fp16 = False, True
    assert lora.weight.dtype == torch.float32
    check_dtypes(torch.nn.Sequential(lora, torch.nn.Linear(2, 2).half().requires_grad_(False)), fp16_qlora, Args())


def test_verdict_and_watchouts():
    assert evaluation.verdict({"eval_rewards/accuracies": 0.9, "eval_rewards/margins": 0.4}, 40).startswith("✅")
    assert evaluation.verdict({"eval_rewards/accuracies": 0.55, "eval_rewards/margins": 0.1}, 20).startswith("⚠️")
    assert evaluation.verdict({"eval_rewards/accuracies": 0.4, "eval_rewards/margins": -0.1}, 40).startswith("❌")
    assert "no held-out test split" in evaluation.verdict({}, 0, train_accuracy=0.7)
    flat = [{"step": i, "loss": 0.6931, "rewards/chosen": 0.0, "rewards/margins": 0.0, "rewards/accuracies": 0.5}
            for i in range(25)]
    notes = " ".join(evaluation.watchouts(flat, preflight={"measured_rows": 10, "truncated": 10}))
    assert "loss is not moving" in notes and "near chance" in notes and "every pair is truncated" in notes
    drift = [{"step": i, "loss": 0.69 - i / 100, "rewards/chosen": -i / 10, "rewards/margins": i / 5,
              "rewards/accuracies": 1.0} for i in range(10)]
    assert "chosen reward is falling" in " ".join(evaluation.watchouts(drift))
    loops = [{"prompt": "p", "base": "A cat is small.", "base_finished": True,
              "adapter": "the cat the cat the cat the cat the cat the cat", "adapter_finished": True}] * 3
    assert "repetitive" in evaluation.degenerate_samples(loops)
    endless = [{**s, "adapter": "A cat.", "adapter_finished": False} for s in loops]
    assert "never-ending" in evaluation.degenerate_samples(endless) and evaluation.watchouts(drift[:3]) == []


def test_form_is_generated_from_the_config_and_round_trips():
    specs = {s.name: s for s in panel.form_fields([get_method("dpo")])}
    assert specs["beta"].key and "0.05-0.1 bold" in specs["beta"].info and specs["loss_type"].kind == "choice"
    assert specs["gradient_checkpointing"].kind == "tristate" and specs["max_prompt_length"].optional
    assert "base_model" not in specs
    values = panel.preset_values("dpo", "cpu-demo")
    assert values["device"] == "cpu" and values["max_steps"] == 80
    form = {**values, "gradient_checkpointing": "auto", "beta": 0.2, "max_prompt_length": None, "lora_r": 8.0}
    config = panel.config_from_form("dpo", form)
    assert config.beta == 0.2 and config.gradient_checkpointing is None and config.max_prompt_length is None
    with pytest.raises(UserError, match="beta must be positive"):
        panel.config_from_form("dpo", {**form, "beta": 0})


def finished_run(storage) -> RunDir:
    run = RunDir.create(StorageLayout(storage).ensure(), "dpo-20260101-000000-abcd")
    run.write_config("dpo", DPOTrainConfig(base_model="demo").to_dict())
    run.write_lineage({"snapshot": "s1", "snapshot_sha256": "f" * 64, "base_model": "demo", "parent_run": None})
    for step in (1, 2):
        run.append_metrics({"step": step, "loss": 0.69 / step, "rewards/accuracies": 0.5 * step,
                            "rewards/margins": 0.1 * step, "rewards/chosen": 0.0, "rewards/rejected": -0.1})
    run.adapter_dir.mkdir()
    (run.adapter_dir / "adapter_config.json").write_text("{}")
    (run.adapter_dir / "adapter_model.safetensors").write_bytes(b"x")
    run.update_status(state="done", step=2, max_steps=2, summary={
        "steps": 2, "verdict": "✅ learned the preference: held-out reward accuracy 90%",
        "eval": {"eval_rewards/accuracies": 0.9, "eval_rewards/margins": 0.41}, "train": {"train_loss": 0.5},
        "watchouts": []})
    return run


def test_run_view_has_curves_progress_and_verdict(storage):
    run = finished_run(storage)
    view = panel.run_view(run)
    assert view.state == "done" and view.fraction == 1.0 and view.adapter == str(run.adapter_dir)
    assert {r["series"] for r in view.curves["loss"]} == {"train loss"} and len(view.curves["rewards"]) == 6
    assert view.verdict.startswith("✅") and not view.can_cancel and not view.can_resume


def test_live_view_watch_outs_and_curves_follow_the_runs_method(storage):
    from alignui.training.reward import RewardTrainConfig
    from alignui.training.rlhf import RLHFTrainConfig

    layout = StorageLayout(storage).ensure()
    rl = RunDir.create(layout, "rlhf-20260101-000000-abcd")
    rl.write_config("rlhf", RLHFTrainConfig(base_model="demo").to_dict())
    dpo = RunDir.create(layout, "dpo-20260101-000000-abcd")
    dpo.write_config("dpo", DPOTrainConfig(base_model="demo").to_dict())
    for step in range(1, 13):  # an RL loss sits near zero by design while the reward climbs: normal
        record = {"step": step, "loss": 0.0001, "reward": -2.0 + 0.4 * step, "reward_std": 1.0, "kl": 0.01,
                  "completions/mean_length": 20.0}
        rl.append_metrics(record)
        dpo.append_metrics({"step": step, "loss": 0.6931})
    for run in (rl, dpo):
        run.update_status(state="running", step=12, max_steps=40)
    assert not any("loss is not moving" in w for w in panel.run_view(rl).watchouts)
    assert any("loss is not moving" in w for w in panel.run_view(dpo).watchouts)
    flat = RunDir.create(layout, "rlhf-20260101-000001-abcd")
    flat.write_config("rlhf", RLHFTrainConfig(base_model="demo").to_dict())
    for step in range(1, 7):
        flat.append_metrics({"step": step, "loss": 0.0, "reward": 0.5, "reward_std": 1.0})
    flat.update_status(state="running", step=6, max_steps=40)
    assert any("mean reward is flat" in w for w in panel.run_view(flat).watchouts)

    reward = RunDir.create(layout, "reward-20260101-000000-abcd")
    reward.write_config("reward", RewardTrainConfig(base_model="demo").to_dict())
    reward.append_metrics({"step": 1, "loss": 0.69, "accuracy": 0.5, "margin": 0.01})
    reward.append_metrics({"step": 2, "eval_loss": 0.3, "eval_accuracy": 0.9, "eval_margin": 2.5})
    reward.update_status(state="running", step=2, max_steps=10)
    curves = panel.run_view(reward).curves
    assert {r["series"]: r["value"] for r in curves["accuracy"]} == {
        "train accuracy (reward model)": 0.5, "held-out accuracy (reward model)": 0.9}
    assert {r["series"] for r in curves["rewards"]} == {"train margin (reward model)",
                                                         "held-out margin (reward model)"}


def test_rlhf_knobs_sit_with_the_key_settings():
    specs = {s.name: s for s in panel.form_fields([get_method("dpo"), get_method("rlhf")])}
    assert all(specs[name].key for name in ("algorithm", "num_generations", "max_new_tokens", "temperature"))
    assert specs["beta"].methods == ("dpo", "rlhf")


def test_model_card_states_lineage_and_metrics_and_push_uses_the_hub(storage, monkeypatch):
    run = finished_run(storage)
    card = hub.model_card(run)
    assert "library_name: peft" in card and "snapshot: `s1`" in card and "f" * 64 in card
    assert "held-out reward accuracy: 0.9" in card and "beta: 0.1" in card
    calls = []

    class FakeApi:  # the Hugging Face Hub cannot be reached from here
        def __init__(self, token):
            calls.append(("token", token))

        def create_repo(self, repo, **kw):
            calls.append(("create", repo, kw["repo_type"], kw["private"]))

        def upload_folder(self, repo_id, folder_path, **kw):
            files = sorted(p.name for p in __import__("pathlib").Path(folder_path).iterdir())
            calls.append(("upload", repo_id, files, "snapshot: `s1`" in open(f"{folder_path}/README.md").read()))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    assert hub.push_adapter(run, "me/adapter", ADMIN, token="hf_x") == "https://huggingface.co/me/adapter"
    assert calls == [("token", "hf_x"), ("create", "me/adapter", "model", True),
                     ("upload", "me/adapter", ["README.md", "adapter_config.json", "adapter_model.safetensors"], True)]
    with pytest.raises(UserError, match="owner/name"):
        hub.push_adapter(run, "not a repo", ADMIN, token="hf_x")
    with pytest.raises(PermissionDenied):
        hub.push_adapter(run, "me/adapter", Identity("bob", "annotator"), token="hf_x")
    json.loads(run.status_path.read_text())


def test_one_copy_of_the_base_the_reference_is_the_adapter_disabled(storage, demo_model_dir):
    from types import SimpleNamespace

    from peft import PeftModel

    from alignui.data.snapshot import load_snapshot
    from alignui.training.dpo import build_trainer

    ref = closer_snapshot(storage, "s", train_rows=8, test_rows=2)
    config = DPOTrainConfig.from_mapping({"base_model": "demo", "device": "cpu", "lora_r": 4, "max_length": 64,
                                          "max_prompt_length": 32})
    run = RunDir.create(StorageLayout(storage).ensure(), "dpo-parts")
    job = SimpleNamespace(config=config, base=str(demo_model_dir), setup=resolve_setup(config), run=run, storage=storage)
    trainer, _ = build_trainer(job, load_snapshot(ref), [])
    assert trainer.ref_model is None and isinstance(trainer.model, PeftModel)
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    assert not trainer.args.bf16 and not trainer.args.fp16
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
