"""Automatic judges beside human votes: reward model, local LLM, OpenAI-compatible endpoint.

Owns: the judge interface (`PairJudge.judge(messages, first, second) -> 'first' | 'second' | 'tie'`),
judging every pair in BOTH orders (a disagreement between the orders counts as a tie, as in MT-Bench's
position-swapped judging), judging a batch of held-out prompts now (a quick estimate before humans
vote), judging the battles humans already voted on, and the report: judge win rates, agreement with
humans (Cohen's kappa, scikit-learn) and the judge's position bias (exact binomial test, scipy).

Invariants:
- Judges that run a model on this machine (`uses_model`) run on the model's worker thread.
- Judge-only battles never enter `comparisons`: human statistics stay human; judgments live in the
  `judgments` table (Store.save_judged_pair / save_judgment).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from alignui.serving.adapters import AdapterServer
from alignui.arena.battle import run_of, arena_models, choose_pair
from alignui.db import Store
from alignui.db.arena import NewJudgment
from alignui.db.records import Messages
from alignui.errors import UserError
from alignui.config import EndpointSpec, judge_settings
from alignui.serving.endpoints import Endpoint, EndpointError
from alignui.serving.generation import PairSettings, with_seed

#: MT-Bench's pairwise judge instruction (abridged), with its [[A]] / [[B]] / [[C]] answer format.
JUDGE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user question displayed below. Choose the assistant that follows the user's instructions and answers the "
    "user's question better: consider helpfulness, relevance, accuracy, depth and level of detail. Do not let the "
    "order of the responses, their length or the assistants' names influence you. Output your final verdict by "
    'strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and '
    '"[[C]]" for a tie.')
ANSWERS = {"A": "first", "B": "second", "C": "tie"}


class PairJudge(Protocol):
    """Anything that can say which of two responses (in the order shown) answers a prompt better."""

    name: str
    uses_model: bool

    def judge(self, messages: Messages, first: str, second: str) -> str:
        """'first', 'second' or 'tie'."""


def judge_user_message(messages: Messages, first: str, second: str) -> str:
    question = "\n".join(f"{m['role']}: {m['content']}" for m in messages if m["role"] != "system")
    return (f"[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{first}\n[The End of Assistant "
            f"A's Answer]\n\n[The Start of Assistant B's Answer]\n{second}\n[The End of Assistant B's Answer]")


def parse_answer(text: str) -> str:
    """'first' / 'second' / 'tie' from a judge's reply; anything unreadable is a tie."""
    found = re.findall(r"\[\[([ABC])\]\]", text or "")
    return ANSWERS[found[-1]] if found else "tie"


@dataclass
class RewardModelJudge:
    """A registered reward model (alignui.serving.reward_model.RewardJudge, or anything with compare(messages, a, b))."""

    reward: Any
    name: str = "reward"
    uses_model: bool = True

    def judge(self, messages: Messages, first: str, second: str) -> str:
        result = self.reward.compare(messages, first, second)
        verdict = getattr(result, "verdict", result)
        return {"a": "first", "b": "second"}.get(verdict, "tie")


def reward_model_judge(storage, ref: str | None = None, device: str = "auto") -> RewardModelJudge:
    """The newest (or named) finished reward model under the data root, as a judge."""
    try:
        from alignui.serving.reward_model import RewardJudge, resolve_reward_model
    except ImportError as exc:
        raise UserError("this alignui has no reward-model judge yet; use the LLM judge instead") from exc
    reward = RewardJudge.load(resolve_reward_model(storage, ref), device)
    return RewardModelJudge(reward, name=f"reward:{reward.run_id}")


@dataclass
class LocalLLMJudge:
    """The served base model (adapters off) as judge: compares the next-token scores of A, B and C after
    the prompt `... [[`. Deterministic; only as good as the served model (the demo model is not a judge)."""

    handle: Any
    name: str = ""
    uses_model: bool = True

    def __post_init__(self):
        if getattr(self.handle, "endpoint", None) is not None:  # --model endpoint:NAME: no local weights to score
            from alignui.serving.remote import no_local_weights

            raise no_local_weights(self.handle, "the local judge (it reads the model's next-token scores)")
        self.name = self.name or f"llm:local:{self.handle.ref}"

    def judge(self, messages: Messages, first: str, second: str) -> str:
        import torch

        tok = self.handle.tokenizer
        chat = [{"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": judge_user_message(messages, first, second)}]
        ids = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        ids = list(ids) + tok.encode("[[", add_special_tokens=False)
        ids = ids[-(self.handle.context_length - 1):]
        options = [tok.encode(letter, add_special_tokens=False)[0] for letter in "ABC"]
        with self.handle.lock, torch.inference_mode():
            logits = self.handle.model(torch.tensor([ids], device=self.handle.model.device)).logits[0, -1]
        return ANSWERS["ABC"[int(torch.argmax(logits[options]))]]


@dataclass
class OpenAIJudge:
    """An OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp, TGI...) as judge."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    uses_model: bool = False

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    def judge(self, messages: Messages, first: str, second: str) -> str:
        """Through huggingface_hub's InferenceClient (alignui.serving.endpoints), like the endpoint generators."""
        prompt = [{"role": "system", "content": JUDGE_SYSTEM},
                  {"role": "user", "content": judge_user_message(messages, first, second)}]
        endpoint = Endpoint(EndpointSpec("judge", self.base_url.rstrip("/"), self.model), api_key=self.api_key,
                            timeout=self.timeout)
        try:
            return parse_answer(endpoint.complete(prompt, max_tokens=512, temperature=0))
        except EndpointError as exc:
            raise UserError(f"the judge {exc} (check the URL: it ends in /v1; the model name; the API key)") from None


JUDGE_KINDS = {"endpoint": "an LLM endpoint (OpenAI-compatible)", "local": "the served model",
               "reward": "the newest reward model"}


@dataclass(frozen=True)
class JudgeSpec:
    """Which judge to use. Endpoint settings left empty come from ALIGNUI_JUDGE_URL, ALIGNUI_JUDGE_MODEL and
    ALIGNUI_JUDGE_API_KEY (or OPENAI_API_KEY)."""

    kind: str = "endpoint"
    url: str = ""
    model: str = ""
    api_key: str = ""

    def __post_init__(self):
        if self.kind not in JUDGE_KINDS:
            raise UserError(f"judge must be one of {', '.join(JUDGE_KINDS)}, got {self.kind!r}")

    def build(self, handle, storage, env: Mapping[str, str] | None = None) -> PairJudge:
        env = judge_settings() if env is None else env
        if self.kind == "local":
            return LocalLLMJudge(handle)
        if self.kind == "reward":
            device = getattr(handle, "device", "auto")
            if hasattr(handle, "submit"):  # loading merges the LoRA (torch ops): on the model's one worker thread,
                return handle.submit(reward_model_judge, storage, device=device).result()  # not a fresh one
            return reward_model_judge(storage, device=device)
        url = self.url.strip() or env.get("ALIGNUI_JUDGE_URL", "")
        model = self.model.strip() or env.get("ALIGNUI_JUDGE_MODEL", "")
        if not url.startswith(("http://", "https://")) or not model:
            raise UserError("the LLM judge needs an endpoint URL (http(s)://host/v1) and a model name: fill them "
                            "in, or set ALIGNUI_JUDGE_URL and ALIGNUI_JUDGE_MODEL")
        key = self.api_key.strip() or env.get("ALIGNUI_JUDGE_API_KEY") or env.get("OPENAI_API_KEY")
        return OpenAIJudge(url, model, api_key=key or None)


def judge_now(store: Store, server: AdapterServer, spec: JudgeSpec, n: int, rng: random.Random, *,
              what: str = "heldout", progress: Progress | None = None) -> dict:
    """Build the judge and judge `n` held-out prompts now (what='heldout') or the voted battles ('voted')."""
    judge = spec.build(server.handle, getattr(store, "path", ".").parent)
    if what == "voted":
        return judge_voted_battles(store, server.handle, judge, n, progress)
    return judge_heldout_batch(store, server, judge, n, rng, progress=progress)


def judge_both_orders(judge: PairJudge, messages: Messages, text_a: str, text_b: str) -> NewJudgment:
    """Ask in both orders; the verdict stands only if both orders agree, else it is a tie."""
    first = judge.judge(messages, text_a, text_b)
    second = judge.judge(messages, text_b, text_a)
    v1 = {"first": "a", "second": "b"}.get(first, "tie")
    v2 = {"first": "b", "second": "a"}.get(second, "tie")
    return NewJudgment(judge=judge.name, verdict=v1 if v1 == v2 else "tie", first_order=first, second_order=second)


def _judge(judge: PairJudge, handle, messages: Messages, text_a: str, text_b: str) -> NewJudgment:
    if judge.uses_model:
        return handle.submit(judge_both_orders, judge, messages, text_a, text_b).result()
    return judge_both_orders(judge, messages, text_a, text_b)


Progress = Callable[[int, int], None]


def judge_heldout_batch(store: Store, server: AdapterServer, judge: PairJudge, n: int, rng: random.Random, *,
                        mode: str = "base_vs_newest", sampling: PairSettings = PairSettings(),
                        progress: Progress | None = None) -> dict:
    """Generate and judge `n` battles on held-out prompts now; returns the judge's report for its judgments."""
    if not 1 <= n <= 1000:
        raise UserError(f"judge between 1 and 1000 prompts at a time, got {n}")
    prompts = store.heldout_prompts()
    if not prompts:
        raise UserError("there are no held-out prompts to judge: import some first with Split 'heldout' (Data tab: "
                        "Import, Split field; or python -m alignui import FILE --split heldout)")
    chosen = rng.sample(prompts, min(n, len(prompts)))
    pair = choose_pair(store, arena_models(store), mode, rng)
    flip = rng.random() < 0.5  # seats alternate within the batch, from a seeded start
    for k, prompt in enumerate(chosen):
        left, right = pair if (k % 2 == 0) != flip else pair[::-1]
        settings = with_seed(sampling, rng.randrange(2**31))
        *_, last = server.stream_two(prompt.messages, run_of(store, left), run_of(store, right), settings)
        gen_a, gen_b = last.result
        judgment = _judge(judge, server.handle, prompt.messages, gen_a.text, gen_b.text)
        store.save_judged_pair(prompt.messages, gen_a, gen_b, judgment, prompt_id=prompt.id)
        if progress:
            progress(k + 1, len(chosen))
    return judge_report(store, judge.name)


def judge_voted_battles(store: Store, handle, judge: PairJudge, limit: int = 200,
                        progress: Progress | None = None) -> dict:
    """Judge the human-voted arena battles this judge has not seen yet (for agreement); returns the report."""
    ids = store.unjudged_battles(judge.name, limit)
    for k, battle_id in enumerate(ids):
        battle = store.get_comparison(battle_id)
        store.save_judgment(battle_id, _judge(judge, handle, battle.messages, battle.text_a, battle.text_b))
        if progress:
            progress(k + 1, len(ids))
    return judge_report(store, judge.name)


# -- the report -------------------------------------------------------------------------------------
HUMAN_AS_JUDGE = {"a": "a", "b": "b", "tie": "tie", "both_bad": "tie"}


def agreement(judge_verdicts, human_verdicts) -> dict:
    """Agreement of judge and humans on the same battles: share identical, and Cohen's kappa (a/b/tie)."""
    from sklearn.metrics import cohen_kappa_score

    judge_v = [str(v) for v in judge_verdicts]
    human_v = [HUMAN_AS_JUDGE[str(v)] for v in human_verdicts]
    n = len(judge_v)
    if n == 0:
        return {"n": 0, "agreement": None, "kappa": None}
    same = float(np.mean([a == b for a, b in zip(judge_v, human_v)]))
    kappa = float(cohen_kappa_score(judge_v, human_v, labels=["a", "b", "tie"])) if len(set(judge_v + human_v)) > 1 \
        else 1.0
    return {"n": n, "agreement": round(same, 4), "kappa": round(kappa, 4) if np.isfinite(kappa) else None}


def position_bias(first_orders, second_orders) -> dict:
    """How often a decisive answer picked whichever response was shown first (0.5 = no bias), with the
    exact binomial test against 0.5, and how often both orders agreed."""
    from scipy.stats import binomtest

    answers = [a for a in list(first_orders) + list(second_orders) if a in ("first", "second")]
    firsts = sum(a == "first" for a in answers)
    pairs = [(f, s) for f, s in zip(first_orders, second_orders) if f and s]
    consistent = sum({"first": "a", "second": "b"}.get(f, "tie") == {"first": "b", "second": "a"}.get(s, "tie")
                     for f, s in pairs)
    return {"decisive_answers": len(answers),
            "prefers_first": round(firsts / len(answers), 4) if answers else None,
            "p_value": float(f"{binomtest(firsts, len(answers), 0.5).pvalue:.4g}") if answers else None,
            "consistency": round(consistent / len(pairs), 4) if pairs else None}


def judge_report(store: Store, judge_name: str, bootstrap: int = 200) -> dict:
    """Judge `judge_name`'s estimate (stats summary of its judgments), agreement with humans, position bias."""
    from alignui.arena.stats import summarize

    df = store.judgments(judge_name)
    voted = df[df["human_verdict"].notna()]
    return {"judge": judge_name, "judgments": int(len(df)),
            "summary": summarize(df[["model_a", "model_b", "winner", "length_a", "length_b"]], bootstrap=bootstrap),
            "agreement": agreement(voted["verdict"], voted["human_verdict"]),
            "position_bias": position_bias(df["first_order"].tolist(), df["second_order"].tolist())}
