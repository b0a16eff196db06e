"""Automatic judges: both-order judging, position bias, agreement with humans, the held-out batch.

The OpenAI-compatible judge talks HTTP to a real local server (127.0.0.1) that answers like an
endpoint would; the local LLM judge runs the real demo model; adapters are real LoRA adapters.
"""

import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sklearn.metrics import cohen_kappa_score

from alignui.serving.adapters import adapter_server
from alignui.annotation.pairs import user_turn
from alignui.arena.battle import ArenaSettings, stream_battle, vote
from alignui.errors import UserError
from alignui.serving.generation import PairSettings
from alignui.arena.judges import (LocalLLMJudge, OpenAIJudge, RewardModelJudge, agreement, judge_both_orders,
                            judge_heldout_batch, judge_voted_battles, parse_answer, position_bias)
from arena.test_arena import make_adapter

FAST = PairSettings.same(max_new_tokens=10)
ANSWER = re.compile(r"\[The Start of Assistant ([AB])'s Answer\]\n(.*?)\n\[The End", re.S)


class Endpoint:
    """A local OpenAI-compatible /v1/chat/completions server with a fixed judging policy."""

    def __init__(self, policy: str):
        self.policy, self.requests = policy, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, self.headers.get("Authorization"), body))
                if outer.policy == "broken":
                    self.send_response(500)
                    self.end_headers()
                    return
                answers = dict(ANSWER.findall(body["messages"][-1]["content"]))
                if outer.policy == "always_first":
                    verdict = "A"
                else:  # prefers the longer answer, whatever the order
                    verdict = "A" if len(answers["A"]) >= len(answers["B"]) else "B"
                reply = {"choices": [{"message": {"role": "assistant",
                                                  "content": f"Both are fine. Verdict: [[{verdict}]]"}}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def endpoint():
    servers = []

    def make(policy):
        servers.append(Endpoint(policy))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_parse_answer_reads_the_last_bracketed_verdict():
    assert parse_answer("[[A]] no wait, [[B]]") == "second"
    assert parse_answer("[[C]]") == "tie" and parse_answer("I cannot decide") == "tie"


def test_a_position_biased_judge_is_caught_and_its_disagreements_become_ties(endpoint):
    ep = endpoint("always_first")
    judge = OpenAIJudge(ep.url, "judge-model", api_key="sk-test")
    j = judge_both_orders(judge, user_turn("Q?"), "short", "a much longer answer")
    assert (j.first_order, j.second_order, j.verdict) == ("first", "first", "tie")
    path, auth, body = ep.requests[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test" and body["model"] == "judge-model"
    assert body["temperature"] == 0 and "[[A]]" in body["messages"][0]["content"]
    bias = position_bias(["first"] * 20, ["first"] * 20)
    assert bias["prefers_first"] == 1.0 and bias["p_value"] < 1e-6 and bias["consistency"] == 0.0


def test_a_consistent_judge_keeps_its_verdict_in_both_orders(endpoint):
    judge = OpenAIJudge(endpoint("longer").url, "judge-model")
    j = judge_both_orders(judge, user_turn("Q?"), "short", "a much longer answer")
    assert (j.first_order, j.second_order, j.verdict) == ("second", "first", "b")
    bias = position_bias(["second", "first", "first"], ["first", "second", "second"])
    assert bias["prefers_first"] == 0.5 and bias["consistency"] == 1.0


def test_an_unreachable_or_failing_endpoint_is_a_clear_error(endpoint):
    with pytest.raises(UserError, match="the judge endpoint .* failed"):
        OpenAIJudge(endpoint("broken").url, "m").judge(user_turn("Q?"), "a", "b")


def test_agreement_matches_scikit_learn():
    judge_v = ["a", "b", "tie", "a", "b", "a", "tie", "b"]
    human_v = ["a", "b", "both_bad", "b", "b", "a", "a", "tie"]
    out = agreement(judge_v, human_v)
    mapped = ["a", "b", "tie", "b", "b", "a", "a", "tie"]
    assert out["n"] == 8 and out["agreement"] == 5 / 8
    assert out["kappa"] == pytest.approx(cohen_kappa_score(judge_v, mapped), abs=1e-4)


def test_reward_model_judges_plug_in_through_compare():
    class Scored:  # the shape of alignui.serving.reward_model.RewardJudge.compare's answer
        def __init__(self, verdict):
            self.verdict = verdict

    class Reward:
        def compare(self, messages, a, b):
            return Scored("a" if "good" in a else "b" if "good" in b else "tie")

    judge = RewardModelJudge(Reward(), name="reward:rm-1")
    assert judge_both_orders(judge, user_turn("Q?"), "good answer", "bad answer").verdict == "a"
    assert judge_both_orders(judge, user_turn("Q?"), "meh", "meh too").verdict == "tie"


def test_the_local_model_judges_deterministically_with_adapters_off(ctx, storage):
    make_adapter(ctx.store, storage, "dpo-one")
    server = adapter_server(ctx.model)
    list(server.stream_two(user_turn("warm"), None, ctx.store.get_run("dpo-one"), FAST))  # adapters loaded
    judge = LocalLLMJudge(ctx.model)
    args = (user_turn("What is rain?"), "Rain is water falling from clouds.", "I like cheese.")
    first = ctx.model.submit(judge.judge, *args).result()
    assert first in ("first", "second", "tie") and ctx.model.submit(judge.judge, *args).result() == first
    tuner = server.peft_model.base_model
    assert all(getattr(m, "disable_adapters", True) for m in tuner.modules() if hasattr(m, "lora_A"))


def test_judging_a_held_out_batch_gives_an_estimate_without_touching_human_votes(ctx, storage, endpoint):
    make_adapter(ctx.store, storage, "dpo-one")
    for k in range(6):
        ctx.store.add_prompt(user_turn(f"Held-out question number {k}?"), split="heldout")
    judge = OpenAIJudge(endpoint("longer").url, "judge-model")
    seen = []
    report = judge_heldout_batch(ctx.store, adapter_server(ctx.model), judge, 4, random.Random(0), sampling=FAST,
                                 progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (4, 4) and report["judgments"] == 4
    df = ctx.store.judgments(judge.name)
    assert sorted(df["model_a"].tolist() + df["model_b"].tolist()) == ["base"] * 4 + ["dpo-one"] * 4
    assert sorted(df["model_a"].tolist()).count("base") == 2  # seats alternate within the batch
    (pair,) = report["summary"]["pairs"]
    assert (pair["model_a"], pair["model_b"], pair["n"]) == ("dpo-one", "base", 4)
    assert report["position_bias"]["consistency"] == 1.0
    assert ctx.store.vote_counts("arena")["total"] == 0 and ctx.store.arena_battles().empty
    with pytest.raises(UserError, match="between 1 and 1000"):
        judge_heldout_batch(ctx.store, adapter_server(ctx.model), judge, 0, random.Random(0))


def test_judging_voted_battles_reports_agreement_with_humans(ctx, storage, endpoint):
    make_adapter(ctx.store, storage, "dpo-one")
    server = adapter_server(ctx.model)
    judge = OpenAIJudge(endpoint("longer").url, "judge-model")
    human = []
    for k in range(4):
        *_, last = stream_battle(ctx.store, server, user_turn(f"Question {k}?"), ctx.rng,
                                 settings=ArenaSettings(sampling=FAST))
        saved = ctx.store.get_comparison(last.battle_id)
        verdict = "a" if len(saved.text_a) >= len(saved.text_b) else "b"  # humans who like long answers too
        verdict = "tie" if k == 3 else verdict
        vote(ctx.store, last.battle_id, verdict)
        human.append(verdict)
    report = judge_voted_battles(ctx.store, ctx.model, judge)
    assert report["agreement"]["n"] == 4 and report["agreement"]["agreement"] == 0.75
    again = judge_voted_battles(ctx.store, ctx.model, judge)  # nothing new to judge
    assert again["judgments"] == 4


def test_judge_spec_takes_the_endpoint_from_the_environment_and_says_what_is_missing(ctx, storage, endpoint):
    from alignui.arena.judges import JudgeSpec, judge_now

    with pytest.raises(UserError, match="judge must be one of"):
        JudgeSpec("oracle")
    with pytest.raises(UserError, match="needs an endpoint URL"):
        JudgeSpec("endpoint").build(ctx.model, storage, env={})
    ep = endpoint("longer")
    judge = JudgeSpec("endpoint").build(ctx.model, storage, env={"ALIGNUI_JUDGE_URL": ep.url,
                                                                 "ALIGNUI_JUDGE_MODEL": "m", "OPENAI_API_KEY": "k"})
    assert (judge.base_url, judge.model, judge.api_key, judge.name) == (ep.url, "m", "k", "llm:m")
    assert isinstance(JudgeSpec("local").build(ctx.model, storage), LocalLLMJudge)
    make_adapter(ctx.store, storage, "dpo-one")
    ctx.store.add_prompt(user_turn("Held-out?"), split="heldout")
    report = judge_now(ctx.store, adapter_server(ctx.model), JudgeSpec("local"), 1, random.Random(0))
    assert report["judge"] == "llm:local:demo" and report["judgments"] == 1


@pytest.mark.slow
def test_a_registered_reward_model_judges_in_both_orders_and_prefers_what_it_learned(reward_storage, ctx,
                                                                                     monkeypatch):
    """The real reward model (trained once per session by the RLHF tests' fixture) as an arena judge."""
    import threading

    from alignui.serving import reward_model as judge_module
    from alignui.serving.demo_corpus import POLITE_CLOSER
    from alignui.arena.judges import JudgeSpec, reward_model_judge

    storage, summary = reward_storage
    judge = reward_model_judge(storage, device="cpu")
    assert judge.name == f"reward:{summary['run']}" and judge.uses_model
    loaded_on = []
    real_load = judge_module.RewardJudge.load
    monkeypatch.setattr(judge_module.RewardJudge, "load", classmethod(
        lambda cls, *a, **k: loaded_on.append(threading.current_thread().name) or real_load(*a, **k)))
    from_the_app = JudgeSpec("reward").build(ctx.model, storage)  # the Leaderboard's "judge now" path
    assert from_the_app.name == judge.name and loaded_on[0].startswith("alignui-model")  # the model's worker thread
    answers = ["The sun is a star. It gives light.", "Rain is water falling from clouds.",
               "Cats are small animals. They like to sleep."]
    verdicts = [judge_both_orders(judge, user_turn("Tell me something."), a + " " + POLITE_CLOSER, a).verdict
                for a in answers]
    assert verdicts.count("a") >= 2  # prefers the response with the property it was trained on, in both orders
    with pytest.raises(UserError, match="no trained reward model yet"):
        reward_model_judge(storage.parent / "empty")
