"""The reward model as an automatic judge (alignui.serving.reward_model): load a registered reward model, score, compare.

Uses the session's reward model (conftest.reward_storage: trained to prefer answers ending with
demo_corpus.POLITE_CLOSER). Checks the verdicts, that scores are deterministic and order-independent in a
batch, that the judge scores exactly like the reward run's held-out evaluation (one tokenization), and the
clear errors for a missing or unknown reward model.
"""

import json
import math

import pytest

from alignui.serving.demo_corpus import POLITE_CLOSER
from alignui.errors import NotFoundError, UserError
from alignui.serving.reward_model import Judgment, RewardJudge, find_reward_models, locate, resolve_reward_model

pytestmark = pytest.mark.slow
PROMPT = [{"role": "user", "content": "What color is a banana?"}]
PLAIN = "A banana is yellow."


@pytest.fixture(scope="module")
def judge(reward_storage):
    storage, summary = reward_storage
    return RewardJudge.load(storage / "runs" / summary["run"], "cpu")


def test_compare_prefers_the_property_whichever_side_it_is_on(judge):
    polite = f"{PLAIN} {POLITE_CLOSER}"
    first = judge.compare(PROMPT, polite, PLAIN)
    second = judge.compare(PROMPT, PLAIN, polite)
    assert first.verdict == "a" and second.verdict == "b"
    assert first.score_a == pytest.approx(second.score_b, abs=1e-5) and first.margin > 0
    assert 0.5 < first.prob_a < 1 and second.prob_a == pytest.approx(1 - first.prob_a, abs=1e-5)
    assert judge.compare(PROMPT, PLAIN, PLAIN).verdict == "tie"
    lenient = RewardJudge(judge.model, judge.tokenizer, judge.device, judge.adapter, judge.meta,
                          tie_margin=abs(first.margin) + 1)
    assert lenient.compare(PROMPT, polite, PLAIN).verdict == "tie"


def test_scores_are_deterministic_batch_independent_and_accept_strings(judge):
    texts = [PLAIN, f"{PLAIN} {POLITE_CLOSER}", "Sure! Here are some facts:\n1. A banana is yellow."]
    batch = judge.score_many([PROMPT] * 3, texts)
    single = [judge.score(PROMPT, t) for t in texts]
    assert batch == pytest.approx(single, abs=1e-4)
    assert judge.score("What color is a banana?", PLAIN) == pytest.approx(single[0], abs=1e-5)  # str prompt
    assert judge.score(PROMPT, [{"role": "assistant", "content": PLAIN}]) == pytest.approx(single[0], abs=1e-5)
    assert all(math.isfinite(s) for s in batch)


def test_judge_scores_exactly_like_the_reward_runs_held_out_evaluation(judge, reward_storage):
    """One tokenization everywhere: the judge (merged LoRA) reproduces the margins measured after training."""
    from alignui.data.snapshot import load_snapshot, resolve_snapshot

    storage, summary = reward_storage
    report = json.loads((storage / "runs" / summary["run"] / "reward_eval.json").read_text())
    test = load_snapshot(resolve_snapshot(storage, "closer"))["test"]
    prompts = list(test["prompt"])
    chosen, rejected = judge.score_many(prompts, list(test["chosen"])), judge.score_many(prompts, list(test["rejected"]))
    margins = [c - r for c, r in zip(chosen, rejected)]
    assert margins == pytest.approx(report["margins"], abs=1e-3)


def test_describe_says_what_is_resident(judge, reward_storage):
    _, summary = reward_storage
    text = judge.describe()
    assert summary["run"] in text and "LoRA merged" in text and "params" in text and "cpu" in text
    assert judge.run_id == summary["run"] and judge.n_parameters > 0


def test_finding_reward_models_and_clear_errors(reward_storage, tmp_path):
    storage, summary = reward_storage
    run = storage / "runs" / summary["run"]
    assert run in find_reward_models(storage)
    assert resolve_reward_model(storage, None) in find_reward_models(storage)  # the newest
    assert resolve_reward_model(storage, summary["run"]) == run
    assert resolve_reward_model(storage, str(run / "adapter")) == run / "adapter"
    adapter, meta = locate(run / "adapter")
    assert adapter == run / "adapter" and meta["run_id"] == summary["run"] and meta["conversational"] is True
    with pytest.raises(NotFoundError, match="no reward model 'nope'.*finished reward runs: "):
        resolve_reward_model(storage, "nope")
    with pytest.raises(NotFoundError, match="not a valid name"):
        resolve_reward_model(storage, "../etc")
    with pytest.raises(NotFoundError, match="no trained reward model yet"):
        resolve_reward_model(tmp_path, None)
    with pytest.raises(NotFoundError, match="holds no reward model"):
        RewardJudge.load(tmp_path, "cpu")
    with pytest.raises(UserError, match="tie_margin must be 0 or more"):
        RewardJudge.load(run, "cpu", tie_margin=-1)


def test_judgment_probability_is_bradley_terry():
    assert Judgment("a", 2.0, 0.0).prob_a == pytest.approx(1 / (1 + math.exp(-2)))
    assert Judgment("tie", 1.0, 1.0).prob_a == 0.5
