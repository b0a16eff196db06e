"""The blind A/B arena: which two models meet, who sits left, streaming a battle, and the one vote.

Owns: the list of arena models ('base' + every finished adapter, newest first, + every registered
OpenAI-compatible endpoint, by its name; with --model endpoint:NAME, 'base' is that endpoint and no adapter
is a contestant), pairing (default
"base vs newest adapter"; or the pair with the fewest battles so far; or the pair whose win rate is
least certain), left/right assignment (a fresh coin per battle, balanced over the arena), drawing a
held-out prompt, streaming a battle into a pending arena comparison, and recording the vote.

Blinding invariants:
- A battle id is the comparison id: 48 random bits, derived from nothing about the models.
- Nothing this module hands out before the vote (BattleProgress) carries a model name.
- A battle is voted once, by the annotator it was played for (Store.decide's conditional update); a second
  vote raises ConflictError
  and changes nothing. Only then does `vote` reveal both names.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from alignui.serving.adapters import BASE, AdapterServer
from alignui.vocab import ANONYMOUS, last_user_turn, normalize_verdict, user_turn
from alignui.db import ARENA_VERDICTS, Store
from alignui.db.records import Messages, Prompt
from alignui.db.runs import Run
from alignui.errors import NotFoundError, UserError, quoted, text_arg
from alignui.serving.endpoints import EndpointError, EndpointRegistry
from alignui.serving.generation import PairSettings, with_seed
from alignui.serving.generators import Generators
from alignui.serving.remote import ADAPTERS_NOTE
from alignui.arena.stats import win_rate

MODES = {
    "base_vs_newest": "base vs newest adapter",
    "fewest_battles": "the pair with the fewest battles so far",
    "most_uncertain": "the pair whose win rate is least certain",
}
#: Seating bound: a pairing whose left counts differ by more than this share of its battles (and more than
#: SEATING_DRIFT_MIN) seats its under-seated model left; a fair coin seldom gets there (tests/arena/test_seating.py).
SEATING_DRIFT, SEATING_DRIFT_MIN = 0.1, 20
VERDICT_TEXT = {"a": "A is better", "b": "B is better", "tie": "a tie", "both_bad": "both bad"}


@dataclass(frozen=True)
class ArenaSettings:
    """How battles are set up."""

    mode: str = field(default="base_vs_newest", metadata={"help": "; ".join(f"{k}: {v}" for k, v in MODES.items())})
    sampling: PairSettings = field(default_factory=PairSettings, metadata={"help": "sampling of both sides"})

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"arena mode must be one of {', '.join(MODES)}, got {self.mode!r}")


def arena_models(store: Store, endpoints: EndpointRegistry | None = None, served_endpoint: str | None = None
                 ) -> list[str]:
    """'base' first, then every finished adapter, newest first, then the endpoints (contestants like adapters).
    `served_endpoint`: the endpoint that is the served model (--model endpoint:NAME): it is 'base', and no adapter
    can be served (no local weights to apply one to)."""
    adapters = [] if served_endpoint else [run.id for run in store.list_adapters()]
    return [BASE] + adapters + [n for n in (endpoints.names if endpoints else []) if n != served_endpoint]


def _uncertainty(store: Store) -> dict[frozenset, float]:
    """Width of each met pair's 95% win-rate interval (unmet pairs are absent: width 1)."""
    df = store.arena_battles()
    records: dict[tuple[str, str], list[float]] = {}
    for a, b, winner in zip(df["model_a"], df["model_b"], df["winner"]):
        key, flip = (a, b) if a <= b else (b, a), a > b  # count wins from the first (sorted) model's side
        rec = records.setdefault(key, [0.0, 0.0, 0.0])
        slot = {"model_a": 1 if flip else 0, "model_b": 0 if flip else 1}.get(winner, 2)
        rec[slot] += 1
    return {frozenset(k): (lambda wr: wr.ci_high - wr.ci_low)(win_rate(*v)) for k, v in records.items()}


def readiness(store: Store, endpoints: EndpointRegistry | None = None) -> str:
    """'' when the arena has two models to compare; else what to do first, for the Arena tab to say up front
    (names no contestant but the base model, which is always there)."""
    if len(arena_models(store, endpoints)) >= 2:
        return ""
    return ("**Nothing to compare yet**: the arena needs at least two models and only the base model is here. "
            "Train an adapter in the *Train* tab (or `python -m alignui train dpo`), or add an endpoint, then come "
            "back: battles pit it against the base model.")


def choose_pair(store: Store, models: list[str], mode: str, rng: random.Random) -> tuple[str, str]:
    """Two different models to meet, by `mode` (ties broken by the seeded `rng`)."""
    if len(models) < 2:
        raise UserError("the arena needs at least two models: train an adapter first (Train tab, or "
                        "python -m alignui train dpo), then come back to compare it with the base model")
    if mode == "base_vs_newest":
        return models[0], models[1]
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    if mode == "fewest_battles":
        served = store.arena_pairings()
        score = {p: -(served.get(p, 0) + served.get(p[::-1], 0)) for p in pairs}
    else:
        widths = _uncertainty(store)
        score = {p: widths.get(frozenset(p), 1.0) for p in pairs}
    best = max(score.values())
    return rng.choice([p for p in pairs if score[p] == best])


def servable_pair(store: Store, server: AdapterServer, mode: str, rng: random.Random,
                  endpoints: EndpointRegistry | None = None) -> tuple[str, str]:
    """A pair by `mode` among the models that can be served; an adapter that cannot (missing, or made for
    another base model) is left out, and its reason is the error when no pair is left."""
    errors: list[UserError] = []
    served = server.handle.endpoint.name if server.handle.endpoint is not None else None
    while True:
        models = [m for m in arena_models(store, endpoints, served) if m not in server.failed]
        try:
            pair = choose_pair(store, models, mode, rng)
        except UserError:
            if served:
                raise UserError(f"the arena needs at least two models: register another endpoint with --endpoint "
                                f"(the served model {server.handle.ref} is 'base'; "
                                + ADAPTERS_NOTE.format(ref=server.handle.ref) + ")") from None
            known = [err for _, err in server.failed.values()]
            if errors or known:
                raise (errors or known)[-1] from None
            raise
        try:
            for ref in pair:
                if ref != BASE and not (endpoints and endpoints.get(ref)):
                    server.ensure(store.get_run(ref))
            return pair
        except UserError as err:  # remembered in server.failed: the next round picks without it
            errors.append(err)


def assign_sides(store: Store, pair: tuple[str, str], rng: random.Random) -> tuple[str, str]:
    """(left, right) by a fresh fair coin from `rng` for every battle, so that no reveal says anything about the
    next seating (a balancing rule let a voter who saw one reveal predict the next). The coin keeps left and
    right balanced over the arena (the share drifts as 1/sqrt(n)); only a pairing that has drifted past
    SEATING_DRIFT seats its under-seated model left outright, a hard bound that a fair coin almost never meets."""
    served = store.arena_pairings()
    x, y = pair
    left_x, left_y = served.get((x, y), 0), served.get((y, x), 0)
    if abs(left_x - left_y) > max(SEATING_DRIFT_MIN, SEATING_DRIFT * (left_x + left_y)):
        return (x, y) if left_x < left_y else (y, x)
    return (x, y) if rng.random() < 0.5 else (y, x)


def draw_heldout_prompt(store: Store, rng: random.Random) -> Prompt:
    prompts = store.heldout_prompts()
    if not prompts:
        raise UserError("there are no held-out prompts yet: type a prompt, or import prompts with Split 'heldout' "
                        "(Data tab: Import, Split field; or python -m alignui import FILE --format prompts "
                        "--split heldout)")
    return rng.choice(prompts)


@dataclass(frozen=True)
class BattleProgress:
    """Texts so far; `battle_id` is set once both sides are done and the battle is saved. No model names.
    `question` is the user turn being judged (a held-out draw included), for the screen."""

    text_a: str
    text_b: str
    battle_id: str = ""
    question: str = ""


def run_of(store: Store, ref: str) -> Run | None:
    return None if ref == BASE else store.get_run(ref)


def stream_battle(store: Store, server: AdapterServer, messages: Messages, rng: random.Random, *,
                  settings: ArenaSettings = ArenaSettings(), prompt_id: str | None = None,
                  annotator: str | None = None, endpoints: EndpointRegistry | None = None
                  ) -> Iterator[BattleProgress]:
    """Pick two models, seat them, stream both answers (one batched call when both are local; an endpoint
    streams beside it), save a pending arena battle."""
    pair = servable_pair(store, server, settings.mode, rng, endpoints)
    left, right = assign_sides(store, pair, rng)
    sampling = with_seed(settings.sampling, rng.randrange(2**31))
    question = last_user_turn(messages)
    yield BattleProgress("", "", question=question)
    if server.handle.endpoint is not None or (endpoints and (endpoints.get(left) or endpoints.get(right))):
        gens = Generators(server.handle, store, endpoints, base_name=BASE)
        updates = gens.stream_pair(messages, gens.resolve(left), gens.resolve(right), sampling, owner=annotator or "")
    else:
        updates = server.stream_two(messages, run_of(store, left), run_of(store, right), sampling,
                                    owner=annotator or "")
    try:
        for update in updates:
            if update.result is None:
                yield BattleProgress(update.text_a, update.text_b, question=question)
                continue
            gen_a, gen_b = update.result
            battle = store.save_pair(messages, gen_a, gen_b, kind="arena", annotator=annotator, prompt_id=prompt_id,
                                     meta={"mode": settings.mode})
            yield BattleProgress(gen_a.text, gen_b.text, battle.id, question=question)
    except EndpointError:
        yield BattleProgress("", "", question=question)  # both texts go: a battle is shown whole or not at all
        raise


def battle_prompt(store: Store, text: str, rng: random.Random, drawn_id: str | None = None
                  ) -> tuple[Messages, str | None]:
    """(messages, stored prompt id): the drawn held-out prompt while the text is still its text, else the
    typed text (a new prompt), else (nothing typed) a fresh held-out draw."""
    text = (text or "").strip()
    if drawn_id:
        drawn = store.get_prompt(drawn_id)
        if drawn.last_user_text.strip() == text:
            return drawn.messages, drawn.id
    if not text:
        drawn = draw_heldout_prompt(store, rng)
        return drawn.messages, drawn.id
    return user_turn(text), None


def play(store: Store, server: AdapterServer, text: str, rng: random.Random, *,
         settings: ArenaSettings = ArenaSettings(), drawn_id: str | None = None,
         annotator: str | None = None, endpoints: EndpointRegistry | None = None) -> Iterator[BattleProgress]:
    """A battle for what the user typed (or drew, or nothing: a held-out draw), streamed."""
    messages, prompt_id = battle_prompt(store, text, rng, drawn_id)
    yield from stream_battle(store, server, messages, rng, settings=settings, prompt_id=prompt_id,
                             annotator=annotator, endpoints=endpoints)


@dataclass(frozen=True)
class Reveal:
    battle_id: str
    model_a: str
    model_b: str
    verdict: str

    @property
    def text(self) -> str:
        """The contract's answer: "model_a vs model_b" (left model first)."""
        return f"{self.model_a} vs {self.model_b}"

    @property
    def markdown(self) -> str:
        return (f"**A** was **{self.model_a}**, **B** was **{self.model_b}**. "
                f"Your vote: {VERDICT_TEXT[self.verdict]}. Saved.")


def vote(store: Store, battle_id: str, verdict: str, *, annotator: str | None = None) -> Reveal:
    """Record the one vote on a battle and reveal both models; UserError subclasses on anything wrong."""
    battle_id = text_arg(battle_id, "battle id", allow_none=True).strip()
    verdict = normalize_verdict(verdict, ARENA_VERDICTS)
    try:
        battle = store.get_comparison(battle_id)
    except NotFoundError:
        battle = None
    if battle is None or battle.kind != "arena":
        raise NotFoundError(f"no arena battle with id {quoted(battle_id)}: start a battle first and vote on its id")
    decided = store.decide(battle_id, verdict, annotator=annotator, allowed=ARENA_VERDICTS, kind="arena",
                           claimable=ANONYMOUS)
    return Reveal(decided.id, decided.model_a, decided.model_b, decided.verdict)
