"""Store methods for the arena and its automatic judges.

Owns: reading arena votes as a battles table (Chatbot Arena's form, with response lengths), how
often each ordered pair of models has been served (for pairing and left/right balance), held-out
prompts, and the `judgments` table (migration 3): one row per automatic judgment of two
generations, on a human-voted battle (comparison_id set) or on a judge-only batch (NULL).

Invariants:
- Arena votes live in `comparisons` (kind 'arena'), written by VotesMixin.save_pair / decide; this
  mixin only reads them. Soft-deleted comparisons never count.
- A judge-only batch writes its generations and its judgment in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from alignui.db.core import from_json, new_id, to_json
from alignui.db.records import Messages, NewGeneration, Prompt

#: arena verdict -> Chatbot Arena's winner vocabulary
WINNER_OF = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
POSITIONS = ("first", "second", "tie")


@dataclass(frozen=True)
class NewJudgment:
    """An automatic judge's answer on (gen A, gen B): the final verdict and what it said in each order."""

    judge: str
    verdict: str  # 'a' | 'b' | 'tie'
    first_order: str | None = None  # answer with A shown first: 'first' | 'second' | 'tie'
    second_order: str | None = None  # answer with B shown first
    score: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in ("a", "b", "tie"):
            raise ValueError(f"a judgment's verdict is 'a', 'b' or 'tie', got {self.verdict!r}")
        for answer in (self.first_order, self.second_order):
            if answer is not None and answer not in POSITIONS:
                raise ValueError(f"a judge's answer is one of {POSITIONS}, got {answer!r}")


_BATTLES = """
    SELECT c.id, ga.model_ref, gb.model_ref, c.verdict, ga.n_tokens, gb.n_tokens, length(ga.text), length(gb.text),
           c.annotator, c.decided_at, c.prompt_id
    FROM comparisons c JOIN generations ga ON ga.id = c.gen_a JOIN generations gb ON gb.id = c.gen_b
    WHERE c.kind = 'arena' AND c.deleted_at IS NULL AND c.verdict IN ('a', 'b', 'tie', 'both_bad')
    ORDER BY c.decided_at, c.id"""

_JUDGMENTS = """
    SELECT j.id, j.judge, ga.model_ref, gb.model_ref, j.verdict, j.first_order, j.second_order, j.score,
           ga.n_tokens, gb.n_tokens, j.comparison_id, c.verdict, j.created_at
    FROM judgments j JOIN generations ga ON ga.id = j.gen_a JOIN generations gb ON gb.id = j.gen_b
    LEFT JOIN comparisons c ON c.id = j.comparison_id AND c.deleted_at IS NULL
    WHERE (? IS NULL OR j.judge = ?)
    ORDER BY j.created_at, j.id"""


class ArenaMixin:
    """Mixed into Store; relies on Database.tx / query and VotesMixin._insert_prompt."""

    def arena_battles(self) -> pd.DataFrame:
        """Decided arena votes: id, model_a, model_b, winner, length_a, length_b (tokens), annotator, decided_at."""
        rows = self.query(_BATTLES)
        df = pd.DataFrame(rows, columns=["id", "model_a", "model_b", "verdict", "length_a", "length_b", "chars_a",
                                         "chars_b", "annotator", "decided_at", "prompt_id"])
        df["winner"] = df["verdict"].map(WINNER_OF)
        for side in ("a", "b"):  # tokens where recorded, else characters
            df[f"length_{side}"] = pd.to_numeric(df[f"length_{side}"], errors="coerce").fillna(df[f"chars_{side}"])
        return df.drop(columns=["chars_a", "chars_b"])

    def arena_pairings(self) -> dict[tuple[str, str], int]:
        """How many arena battles (voted or not) put model X left and model Y right, keyed (X, Y)."""
        rows = self.query("""SELECT ga.model_ref, gb.model_ref, count(*) FROM comparisons c
                             JOIN generations ga ON ga.id = c.gen_a JOIN generations gb ON gb.id = c.gen_b
                             WHERE c.kind = 'arena' AND c.deleted_at IS NULL GROUP BY 1, 2""")
        return {(a, b): int(n) for a, b, n in rows}

    def heldout_prompts(self) -> list[Prompt]:
        """Prompts kept out of training (split 'heldout'), oldest first."""
        rows = self.query("SELECT id, messages, source, split, created_at FROM prompts WHERE split = 'heldout' "
                          "ORDER BY created_at, id")
        return [Prompt(id=r[0], messages=from_json(r[1]), source=r[2], split=r[3], created_at=r[4]) for r in rows]

    # -- judgments -----------------------------------------------------------------------------
    def _insert_judgment(self, cur, judgment: NewJudgment, prompt_id: str, gen_a: str, gen_b: str,
                         comparison_id: str | None) -> str:
        jid = new_id()
        cur.execute("INSERT INTO judgments (id, judge, comparison_id, prompt_id, gen_a, gen_b, verdict, first_order,"
                    " second_order, score, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [jid, judgment.judge, comparison_id, prompt_id, gen_a, gen_b, judgment.verdict,
                     judgment.first_order, judgment.second_order, judgment.score, to_json(judgment.meta)])
        return jid

    def save_judgment(self, comparison_id: str, judgment: NewJudgment) -> str:
        """Record a judge's answer on a stored comparison (a human-voted arena battle)."""
        pair = self.get_comparison(comparison_id)
        return self.tx(lambda cur: self._insert_judgment(cur, judgment, pair.prompt_id, pair.gen_a, pair.gen_b,
                                                         comparison_id))

    def save_judged_pair(self, messages: Messages, gen_a: NewGeneration, gen_b: NewGeneration,
                         judgment: NewJudgment, *, prompt_id: str | None = None) -> str:
        """A judge-only battle: both generations and the judgment, in one transaction (no comparison row)."""
        def work(cur) -> str:
            pid = prompt_id or self._insert_prompt(cur, messages, "judge", "heldout", None)
            ids = self._insert_generations(cur, pid, (gen_a, gen_b))
            return self._insert_judgment(cur, judgment, pid, ids[0], ids[1], None)

        return self.tx(work)

    def judgments(self, judge: str | None = None) -> pd.DataFrame:
        """Judgments (of one judge, or all) as battles: model_a, model_b, winner, the answers per order, and
        the human verdict when the judged pair is a voted arena battle."""
        rows = self.query(_JUDGMENTS, [judge, judge])
        df = pd.DataFrame(rows, columns=["id", "judge", "model_a", "model_b", "verdict", "first_order",
                                         "second_order", "score", "length_a", "length_b", "comparison_id",
                                         "human_verdict", "created_at"])
        df["winner"] = df["verdict"].map(WINNER_OF)
        return df

    def judges(self) -> list[str]:
        return [r[0] for r in self.query("SELECT DISTINCT judge FROM judgments ORDER BY 1")]

    def unjudged_battles(self, judge: str, limit: int = 100) -> list[str]:
        """Ids of voted arena battles that `judge` has not judged yet, oldest first."""
        rows = self.query("""SELECT c.id FROM comparisons c WHERE c.kind = 'arena' AND c.deleted_at IS NULL
                             AND c.verdict IN ('a', 'b', 'tie', 'both_bad') AND NOT EXISTS (
                               SELECT 1 FROM judgments j WHERE j.comparison_id = c.id AND j.judge = ?)
                             ORDER BY c.decided_at, c.id LIMIT ?""", [judge, limit])
        return [r[0] for r in rows]
