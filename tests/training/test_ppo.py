"""PPO (`train rlhf --set algorithm=ppo`): the parts that are easy to get subtly wrong, then the real thing.

Fast: GAE and returns against hand-computed numbers, the policy and value clips (the gradient is zero exactly
where the clip binds), masking (values at padded positions change no loss, advantage or whitening), the KL term
(zero when policy == reference, its sign), the adaptive KL controller, the settings' validation, and on the
demo model: completion masks stop after the first end token, left padding of the prompt does not change a
completion's log-probs, and a fresh policy has KL 0 to the reference and a critic at V = 0.

Slow (the session's reward model, conftest.reward_storage): the effect test like RLOO's (the closer rate on 110
held-out prompts rises), live metrics and rollouts, and a cancelled PPO run that resumes to the end.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from alignui.training import ppo
from alignui.training.config import TrainConfigError, build_config, preset_names
from alignui.training.methods import get_method
from alignui.training.rlhf import RLHFTrainConfig
from conftest import REPO
from training.test_rlhf import held_out_effect



# -- the maths -----------------------------------------------------------------------------------------------------
def test_gae_and_returns_match_a_hand_computed_example():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 5.0], [1.0, 2.0, 3.0, 4.0]])
    values = torch.tensor([[0.5, 0.4, 0.8, 9.0], [0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    adv, ret = ppo.gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # row 0 by hand: d2 = 1 - 0.8 = 0.2; d1 = 0.9*0.8 - 0.4 = 0.32; d0 = 0.9*0.4 - 0.5 = -0.14
    # A2 = 0.2; A1 = 0.32 + 0.72*0.2 = 0.464; A0 = -0.14 + 0.72*0.464 = 0.19408; the padded slot is 0
    assert adv[0].tolist() == pytest.approx([0.19408, 0.464, 0.2, 0.0])
    assert ret[0].tolist() == pytest.approx([0.69408, 0.864, 1.0, 0.0])
    # row 1, V = 0: A_t = sum_k (gamma*lam)^k r_{t+k}
    g = 0.72
    assert adv[1].tolist() == pytest.approx([1 + 2 * g + 3 * g ** 2 + 4 * g ** 3, 2 + 3 * g + 4 * g ** 2, 3 + 4 * g, 4])
    _, mc = ppo.gae(rewards[1:], values[1:], mask[1:], gamma=1.0, lam=1.0)  # gamma = lambda = 1: Monte Carlo
    assert mc[0].tolist() == pytest.approx([10.0, 9.0, 7.0, 4.0])


def test_token_rewards_put_the_score_on_the_last_real_token_and_penalise_kl():
    kl = torch.tensor([[0.1, -0.2, 0.3, 7.0], [0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    rewards = ppo.token_rewards(torch.tensor([2.0, -1.0]), kl, mask, beta=0.5)
    assert rewards[0].tolist() == pytest.approx([-0.05, 0.1, -0.15 + 2.0, 0.0])
    assert rewards[1].tolist() == pytest.approx([0.0, 0.0, 0.0, -1.0])
    empty = ppo.token_rewards(torch.tensor([3.0]), torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.long), beta=0.1)
    assert empty.abs().sum() == 0  # a row with no real token gets no score


def test_kl_is_zero_for_the_reference_itself_and_positive_where_the_policy_is_surer():
    logp = torch.tensor([[-1.0, -2.0, -0.5]])
    mask = torch.tensor([[1, 1, 0]])
    assert ppo.kl_k1(logp, logp.clone(), mask).abs().sum() == 0
    kl = ppo.kl_k1(logp, logp - 1.0, mask)  # the policy gives its own samples more probability than the reference
    assert kl.tolist() == [[1.0, 1.0, 0.0]]
    assert (ppo.token_rewards(torch.zeros(1), kl, mask, beta=0.1)[0, :2] < 0).all()  # ... and pays for it


def _grad(fn, x):
    x = x.clone().requires_grad_(True)
    fn(x).backward()
    return x.grad


def test_policy_clip_zeroes_the_gradient_exactly_where_the_ratio_leaves_the_range_in_the_advantage_direction():
    old = torch.zeros(1, 4)
    new = torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.5]]))  # ratios
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    mask = torch.ones(1, 4)
    grad = _grad(lambda x: ppo.policy_loss(x, old, adv, mask, 0.2)[0], new)[0]
    # ratio 1.5 with A > 0 and ratio 0.5 with A < 0 are clipped: no gradient; the other two keep theirs
    assert grad[0] == 0 and grad[3] == 0 and grad[1] != 0 and grad[2] != 0
    loss, clipfrac = ppo.policy_loss(new, old, adv, mask, 0.2)
    assert clipfrac.item() == pytest.approx(0.5)
    assert loss.item() == pytest.approx((-1.2 + 1.5 - 0.5 + 0.8) / 4)
    inside, frac = ppo.policy_loss(torch.log(torch.tensor([[1.1]])), torch.zeros(1, 1), torch.ones(1, 1),
                                   torch.ones(1, 1), 0.2)
    assert frac.item() == 0 and inside.item() == pytest.approx(-1.1)


def test_value_clip_keeps_the_larger_error():
    old, mask = torch.zeros(1, 2), torch.ones(1, 2)
    values = torch.tensor([[1.0, 1.0]])
    returns = torch.tensor([[0.5, 2.0]])
    # slot 0: clipped V = 0.2 -> errors 0.25 (unclipped) vs 0.09: the unclipped one counts, gradient flows
    # slot 1: clipped V = 0.2 -> errors 1.0 vs 3.24: the clipped one counts, V gets no gradient
    grad = _grad(lambda v: ppo.value_loss(v, old, returns, mask, 0.2)[0], values)[0]
    assert grad[0] != 0 and grad[1] == 0
    loss, frac = ppo.value_loss(values, old, returns, mask, 0.2)
    assert loss.item() == pytest.approx(0.5 * (0.25 + 3.24) / 2) and frac.item() == pytest.approx(0.5)


def test_masked_positions_change_no_loss_advantage_or_whitening():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    a = {k: torch.randn(2, 5) for k in ("logp", "old", "adv", "v", "oldv", "ret", "r")}
    b = {k: torch.where(mask.bool(), t, torch.full_like(t, 50.0)) for k, t in a.items()}  # garbage where masked
    for d in (a, b):
        d["pg"] = ppo.policy_loss(d["logp"], d["old"], d["adv"], mask, 0.2)
        d["vf"] = ppo.value_loss(d["v"], d["oldv"], d["ret"], mask, 0.2)
        d["gae"] = ppo.gae(d["r"], d["v"], mask, 1.0, 0.95)
        d["white"] = ppo.masked_whiten(d["adv"], mask)
    for key in ("pg", "vf", "gae"):
        for x, y in zip(a[key], b[key]):
            assert torch.allclose(x, y), key
    assert torch.allclose(a["white"], b["white"])
    white = a["white"]
    assert white[mask.bool()].mean().abs() < 1e-6 and white[mask.bool()].std() == pytest.approx(1.0, abs=1e-4)
    assert (white[~mask.bool()] == 0).all()
    assert ppo.masked_mean(torch.ones(1, 2), torch.zeros(1, 2)).item() == 0  # nothing unmasked: 0, not NaN


def test_adaptive_kl_moves_beta_toward_the_target_and_fixed_beta_stays():
    fixed = ppo.AdaptiveKL(0.05)
    assert fixed.update(100.0, 64) == 0.05
    control = ppo.AdaptiveKL(0.1, target=6.0, horizon=100)
    assert control.update(12.0, 10) == pytest.approx(0.1 * (1 + 0.2 * 10 / 100))  # too much KL: beta up (capped)
    control = ppo.AdaptiveKL(0.1, target=6.0, horizon=100)
    assert control.update(5.4, 10) == pytest.approx(0.1 * (1 - 0.1 * 10 / 100))  # too little: beta down


def test_ppo_settings_validate_and_the_presets_select_ppo():
    config = RLHFTrainConfig(algorithm="ppo", num_generations=1)  # PPO needs no groups of samples
    assert (config.ppo_epochs, config.num_mini_batches, config.cliprange, config.lam) == (4, 2, 0.2, 0.95)
    assert "GAE" in RLHFTrainConfig.help_of("lam") and "ppo" in RLHFTrainConfig.help_of("algorithm")
    assert config.reference_pass() and not RLHFTrainConfig().reference_pass()  # pre-flight counts PPO's reference
    with pytest.raises(TrainConfigError, match=r"\(4\) must be a multiple of num_mini_batches \(3\)"):
        RLHFTrainConfig(algorithm="ppo", num_mini_batches=3)
    for bad, match in (({"gamma": 0}, "gamma must be in"), ({"lam": 1.5}, "lam must be in"),
                       ({"cliprange": 0}, "cliprange must be positive"), ({"ppo_epochs": 0}, "ppo_epochs must be"),
                       ({"kl_target": -1}, "kl_target must be"), ({"num_processes": 2}, "runs in one process")):
        with pytest.raises(TrainConfigError, match=match):
            RLHFTrainConfig(algorithm="ppo", **bad)
    with pytest.raises(TrainConfigError, match="num_generations must be at least 2"):
        RLHFTrainConfig(algorithm="rloo", num_generations=1, per_device_train_batch_size=4)
    method = get_method("rlhf")
    names = preset_names(method.presets_path)
    assert {"cpu-demo-ppo", "gpu-ppo"} <= set(names)
    for name in ("cpu-demo-ppo", "gpu-ppo"):
        assert build_config(RLHFTrainConfig, config_file=method.presets_path, preset=name).algorithm == "ppo"


# -- the loop's parts on the demo model ----------------------------------------------------------------------------
def test_completion_mask_keeps_the_first_end_token_and_nothing_after():
    from alignui.training.ppo_loop import completion_mask

    completions = torch.tensor([[5, 6, 2, 0, 0], [5, 2, 2, 7, 0], [5, 6, 7, 8, 9], [2, 0, 0, 0, 0]])
    assert completion_mask(completions, {2}).tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1],
                                                          [1, 0, 0, 0, 0]]


class ClosingJudge:
    """A rule-based reward (1 when the answer ends with the polite closer): a reward function, not a mock."""

    def score_many(self, prompts, responses):
        from alignui.serving.demo_corpus import POLITE_CLOSER

        texts = [r if isinstance(r, str) else r[-1]["content"] for r in responses]
        return [float(t.strip().endswith(POLITE_CLOSER)) for t in texts]


@pytest.fixture(scope="module")
def ppo_trainer(tmp_path_factory, demo_model_dir):
    from alignui.runs import RunDir
    from alignui.paths import StorageLayout
    from alignui.training.common import resolve_setup
    from alignui.training.ppo_loop import build_ppo_trainer

    torch.set_num_threads(1)
    storage = tmp_path_factory.mktemp("ppo") / "storage"
    layout = StorageLayout(storage).ensure()
    config = RLHFTrainConfig(algorithm="ppo", base_model="demo", device="cpu", per_device_train_batch_size=4,
                             num_generations=2, max_new_tokens=12, max_steps=1, eval_prompts=0, lora_dropout=0.0)
    job = SimpleNamespace(config=config, base=str(demo_model_dir), setup=resolve_setup(config), storage=storage,
                          run=RunDir.create(layout, "ppo-unit"))
    trainer, tokenizer = build_ppo_trainer(job, ["What is a cat?"], [ClosingJudge()], [])
    return trainer


def test_a_fresh_policy_matches_the_reference_and_its_critic_starts_at_zero(ppo_trainer):
    torch.manual_seed(0)
    batch = ppo_trainer.rollout([[{"role": "user", "content": "What is a cat?"}],
                                 [{"role": "user", "content": "Tell me about the old lighthouse keeper."}]])
    mask = batch["mask"]
    assert batch["ids"].shape[0] == 4 and mask.sum() > 0
    rows = torch.arange(4)
    with torch.no_grad(), ppo_trainer.adapter(None):
        ref = ppo_trainer.token_logprobs(batch, rows)
    assert torch.allclose(batch["old_logp"] * mask, ref * mask, atol=1e-5)  # LoRA B = 0: policy == reference
    assert batch["old_values"].abs().sum() == 0
    assert ppo_trainer._metrics["kl"][-1] == pytest.approx(0.0, abs=1e-5)
    assert (batch["advantages"] * (1 - mask)).abs().sum() == 0  # nothing on padding
    trainable = {n for n, p in ppo_trainer.model.named_parameters() if p.requires_grad}
    assert any(".default." in n for n in trainable) and any(".value." in n for n in trainable)
    assert not any("base_layer" in n or "original_module" in n for n in trainable)


def test_left_padding_of_the_prompt_changes_no_completion_log_prob(ppo_trainer):
    from alignui.training.ppo_loop import encode_prompts

    tok, model = ppo_trainer.processing_class, ppo_trainer.model
    short = [{"role": "user", "content": "Hi?"}]
    long = [{"role": "user", "content": "Tell me everything about the old lighthouse keeper and the sea."}]
    completion = tok("A cat is small.", add_special_tokens=False, return_tensors="pt")["input_ids"]

    def logps(prompts):
        enc = encode_prompts(tok, prompts, model.device)
        n = enc["input_ids"].shape[1]
        ids = torch.cat([enc["input_ids"], completion.repeat(len(prompts), 1)], dim=1)
        attn = torch.cat([enc["attention_mask"], torch.ones_like(completion).repeat(len(prompts), 1)], dim=1)
        batch = {"ids": ids, "attn": attn, "pos": (attn.cumsum(-1) - 1).clamp(min=0), "n_prompt": n}
        with torch.no_grad():
            return ppo_trainer.token_logprobs(batch, torch.arange(len(prompts)))

    alone, padded = logps([short]), logps([short, long])  # in the pair, the short prompt is left-padded
    assert padded.shape[1] == completion.shape[1]  # only completion positions: the prompt never enters a loss
    assert torch.allclose(alone[0], padded[0], atol=1e-4)


# -- training on the demo model (slow) -----------------------------------------------------------------------------
def run_train(storage, *args, timeout=900):
    cmd = [sys.executable, "-m", "alignui", "train", "rlhf", "--storage", str(storage), *args]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def ppo_run(reward_storage):
    storage, reward = reward_storage
    summary = run_train(storage, "--snapshot", "closer", "--preset", "cpu-demo-ppo", "--set",
                        f"reward_model={reward['run']}", "--set", "seed=42", "--run-id", "ppo-effect")
    return storage, reward, summary


@pytest.mark.slow
def test_effect_ppo_raises_mean_reward_and_the_property_on_held_out_prompts(ppo_run, demo_model_dir):
    from alignui.serving.demo_corpus import POLITE_CLOSER

    storage, reward, summary = ppo_run
    prompts, results = held_out_effect(storage, reward, summary, demo_model_dir)
    (f0, r0), (f1, r1) = results["base"], results["policy"]
    print(f"PPO effect on {len(prompts)} held-out prompts x 2 samples: '{POLITE_CLOSER}' at the end {f0:.1%} -> "
          f"{f1:.1%}; mean reward {r0:+.2f} -> {r1:+.2f}; in-run verdict: {summary['verdict']}")
    assert f0 < 0.2 and f1 > 0.6
    assert r1 > r0 + 1.0
    assert summary["verdict"].startswith("✅") and summary["params_moved"] > 0.01


@pytest.mark.slow
def test_ppo_metrics_rollouts_residency_and_a_plain_policy_adapter(ppo_run):
    from alignui.training.rlhf_eval import rl_watchouts

    storage, reward, summary = ppo_run
    run = storage / "runs" / summary["run"]
    train = [m for m in read_jsonl(run / "metrics.jsonl") if "reward" in m]
    assert len(train) == 10  # 20 rollout batches, logged every 2
    keys = {"reward", "reward_std", "kl", "beta", "policy_loss", "value_loss", "clip_fraction", "value_clip_fraction",
            "approx_kl", "entropy", "completions/mean_length", "completions/clipped_ratio", "rewards/reward/mean"}
    assert all(keys <= set(m) for m in train)
    first, last = sum(m["reward"] for m in train[:3]) / 3, sum(m["reward"] for m in train[-3:]) / 3
    assert last > first + 1.0
    # the critic learned: its value loss fell and its mean value followed the reward. Averaged, not single logged
    # points: CPU runs are not bit-identical, and a late move of the policy moves the returns the critic chases
    # (last point / first: 0.009, 0.20 and 0.25 in three runs; the last half's mean / the first three's: 0.11, 0.12)
    value_loss = [m["value_loss"] for m in train]
    assert sum(value_loss[5:]) / 5 < sum(value_loss[:3]) / 3 / 3
    assert abs(train[-1]["value_mean"] - train[-1]["reward"]) < abs(train[0]["value_mean"] - train[-1]["reward"])
    assert all(0 <= m["clip_fraction"] <= 1 for m in train) and any(m["clip_fraction"] > 0 for m in train)
    rollouts = read_jsonl(run / "rollouts.jsonl")
    assert {r["step"] for r in rollouts} == {m["step"] for m in train}
    assert len([r for r in rollouts if r["step"] == train[-1]["step"]]) == 4
    assert isinstance(rl_watchouts(train), list)  # the Train tab's watch-outs read these names
    status = json.loads((run / "status.json").read_text())
    assert "value = a second LoRA adapter ('value')" in status["resident"] and "ONE copy of demo" in status["resident"]
    lineage = json.loads((run / "lineage.json").read_text())
    assert lineage["method"] == "rlhf" and lineage["snapshot"] == "closer" and lineage["reward_models"] == [reward["run"]]
    adapter = run / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text()).get("modules_to_save") in (None, [])
    assert not (adapter / "value").exists() and not (adapter / "ref").exists()  # the policy alone
    checkpoint = sorted((run / "checkpoints").iterdir())[-1]
    assert (checkpoint / "value" / "adapter_model.safetensors").is_file() and (checkpoint / "ppo_state.json").is_file()
    assert "algorithm: ppo" in (run / "config.yaml").read_text()


@pytest.mark.slow
def test_the_arena_serves_the_ppo_adapter_blind_from_the_registry(ppo_run, ctx, storage):
    import shutil

    from alignui.annotation.pairs import user_turn
    from alignui.arena.battle import ArenaSettings, stream_battle
    from alignui.serving.adapters import adapter_server
    from alignui.serving.generation import PairSettings

    source, _, summary = ppo_run
    shutil.copytree(source / "runs" / summary["run"], storage / "runs" / summary["run"])
    ctx.job_runner().sync_all()  # the app indexes run directories made by the CLI
    run = ctx.store.get_run(summary["run"])
    assert (run.method, run.status, run.snapshot_id) == ("rlhf", "done", "closer")
    assert run.adapter_path and Path(run.adapter_path).is_dir()
    steps = list(stream_battle(ctx.store, adapter_server(ctx.model), user_turn("What color is a forest?"), ctx.rng,
                               settings=ArenaSettings(sampling=PairSettings.same(max_new_tokens=16))))
    saved = ctx.store.get_comparison(steps[-1].battle_id)
    assert {saved.model_a, saved.model_b} == {"base", summary["run"]}
    assert summary["run"] not in json.dumps([vars(s) for s in steps])  # blind until the vote


@pytest.mark.slow
def test_a_cancelled_ppo_run_resumes_exactly_where_an_uninterrupted_one_goes(reward_storage):
    storage, reward = reward_storage
    sets = ["--snapshot", "closer", "--preset", "cpu-demo-ppo", "--set", "max_steps=5", "--set", "save_steps=2",
            "--set", "logging_steps=1", "--set", "eval_prompts=2", "--set", "kl_target=1.0",  # adaptive beta
            "--set", "kl_horizon=200", "--set", f"reward_model={reward['run']}"]
    straight = run_train(storage, *sets, "--run-id", "ppo-straight")
    run_id = "ppo-resume"
    proc = subprocess.Popen([sys.executable, "-m", "alignui", "train", "rlhf", "--storage", str(storage), *sets,
                             "--run-id", run_id], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    status_path = storage / "runs" / run_id / "status.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        status = json.loads(status_path.read_text()) if status_path.is_file() else {}
        if (status.get("step") or 0) >= 2:
            os.kill(proc.pid, signal.SIGTERM)  # what the app's Cancel sends
            break
        time.sleep(0.2)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode != 0 and json.loads(status_path.read_text())["state"] == "cancelled", output[-2000:]
    checkpoint = sorted((storage / "runs" / run_id / "checkpoints").iterdir())[-1]
    assert (checkpoint / "value").is_dir() and (checkpoint / "ppo_state.json").is_file(), output[-2000:]
    summary = run_train(storage, "--run-id", run_id, "--resume")
    assert summary["status"] == "done" and summary["steps"] == 5
    resumed = [m for m in read_jsonl(Path(summary["path"]) / "metrics.jsonl") if "reward" in m]
    reference = [m for m in read_jsonl(Path(straight["path"]) / "metrics.jsonl") if "reward" in m]
    assert [m["step"] for m in resumed] == [1, 2, 3, 4, 5]  # no step logged twice after the resume
    for a, b in zip(resumed, reference):  # same seed: the resumed run retraces the uninterrupted one
        for key in ("reward", "beta", "kl", "value_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-5), (a["step"], key)
    assert reference[-1]["beta"] != reference[0]["beta"]  # the adaptive coefficient moved (and was restored)
