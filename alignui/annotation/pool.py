"""The prompt pool: prompts waiting to be annotated, added by pasting lines or uploading a file.

Owns: turning pasted text or an uploaded .txt/.jsonl/.csv file into prompt
conversations, adding them to the pool (an `import`, so admins only once
admins are configured), drawing the next prompt for an annotator and the
pool's counts. Which prompt comes next is decided by Store.next_pool_prompt
(see alignui/db/pool.py for the order).

Invariants:
- Adding is all or nothing: a file with one unreadable row adds nothing and
  the error names the row.
- The same conversation is stored once: duplicates (in the input or already
  in the database) are counted and skipped.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from alignui.db import Prompt, Store
from alignui.db.records import Messages
from alignui.errors import NotFoundError, UserError
from alignui.team.identity import Identity, require

FORMATS = (".txt", ".jsonl", ".csv")
#: Column / key names read as the prompt, in order of preference.
PROMPT_KEYS = ("prompt", "messages", "instruction", "question", "text", "query", "input")
MAX_PROMPTS_PER_ADD = 100_000


@dataclass(frozen=True)
class AddResult:
    added: int
    duplicates: int

    def describe(self) -> str:
        dup = f"; {self.duplicates} already in the pool were skipped" if self.duplicates else ""
        return f"Added {self.added} prompt{'s' if self.added != 1 else ''} to the pool{dup}."


def _as_messages(value, where: str) -> Messages:
    """A prompt value (a string, or a list of {role, content}) as a conversation."""
    if isinstance(value, str):
        if not value.strip():
            raise UserError(f"{where}: the prompt is empty; remove the row or fill it in")
        return [{"role": "user", "content": value.strip()}]
    if isinstance(value, list) and value and all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                 and m.get("role") in ("system", "user", "assistant") for m in value):
        if value[-1]["role"] != "user":
            raise UserError(f"{where}: a conversation must end with a user message (the turn to answer)")
        return [{"role": m["role"], "content": m["content"]} for m in value]
    raise UserError(f"{where}: expected a prompt string or a list of {{role, content}} messages, "
                    f"got {type(value).__name__}")


def _from_record(record, where: str) -> Messages:
    if isinstance(record, str):
        return _as_messages(record, where)
    if isinstance(record, dict):
        for key in PROMPT_KEYS:
            if key in record and record[key] is not None:
                return _as_messages(record[key], where)
        raise UserError(f"{where}: no prompt field; name it one of {', '.join(PROMPT_KEYS)}")
    raise UserError(f"{where}: expected a JSON string or object, got {type(record).__name__}")


def parse_lines(text: str) -> list[Messages]:
    """One prompt per non-empty line of pasted text."""
    return [[{"role": "user", "content": line.strip()}] for line in (text or "").splitlines() if line.strip()]


def parse_file(path: str | Path) -> list[Messages]:
    """Prompts from a .txt (one per line), .jsonl (a string or an object with a prompt field per line)
    or .csv (a prompt column, else the first column) file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"{path.name}: prompts can be read from {', '.join(FORMATS)} files; convert it to one of those")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path.name} is not UTF-8 text; save it as UTF-8 and upload it again") from exc
    if suffix == ".txt":
        return parse_lines(text)
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path.name} line {number} is not valid JSON ({exc.msg}); fix or remove it") from exc
            rows.append(_from_record(record, f"{path.name} line {number}"))
        return rows
    return _parse_csv(path)


def _parse_csv(path: Path) -> list[Messages]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path.name} could not be read as CSV ({exc}); check the quoting") from exc
    if frame.columns.empty:
        return []
    column = next((c for c in frame.columns if c.strip().lower() in PROMPT_KEYS), frame.columns[0])
    return [_as_messages(value, f"{path.name} row {i + 2}") for i, value in enumerate(frame[column])
            if str(value).strip()]


def add_to_pool(store: Store, identity: Identity, *, text: str = "", files: list[str | Path] = ()) -> AddResult:
    """Add pasted lines and uploaded files to the pool, in one transaction."""
    require(identity, "import")
    prompts = parse_lines(text)
    for f in files or ():
        prompts += parse_file(f)
    if not prompts:
        raise UserError("nothing to add: paste prompts (one per line) or upload a .txt, .jsonl or .csv file")
    if len(prompts) > MAX_PROMPTS_PER_ADD:
        raise UserError(f"{len(prompts)} prompts at once is too many; add at most {MAX_PROMPTS_PER_ADD} per upload")
    added, duplicates = store.add_prompts_bulk(prompts, source="pool")
    return AddResult(added, duplicates)


def on_screen(pool_prompt: str | None, shown_id: str | None, prompt_of) -> tuple[str, ...]:
    """The pool prompts N must not hand straight back: `pool_prompt` (drawn for what is on screen, also while it
    is still being written) and the prompt of the item `shown_id` on screen, `prompt_of(shown_id)` (a typed
    prompt joins the pool; left unjudged, with nothing on it, it sorts before every prompt that has something)."""
    own = None
    if shown_id:
        try:
            own = prompt_of(shown_id)
        except NotFoundError:  # an admin deleted it meanwhile
            pass
    return tuple(p for p in (pool_prompt, own) if p)


#: What an annotator is told after a verdict when the prompt box holds a prompt typed meanwhile (typed_next).
TYPED_NEXT = "Press Enter to generate the prompt you typed, or N to draw one from the pool."


def typed_next(box: str, judged_prompt: str) -> str:
    """The prompt the annotator typed as the next one while judging, or "": the prompt box as it is after a
    verdict, when it holds something other than the prompt of what was just judged. The verdict's auto-advance
    leaves it in the box and draws or generates nothing over it (pairs and thumbs alike)."""
    box = box.strip()
    return box if box != judged_prompt.strip() else ""


def draw(store: Store, annotator: str | None, rng: random.Random, *, exclude: tuple[str, ...] = ()) -> Prompt | None:
    """The next pool prompt for `annotator` (unannotated first, then fewest votes), or None."""
    return store.next_pool_prompt(annotator=annotator, salt=rng.randrange(2**31), exclude=exclude)


def describe_counts(store: Store) -> str:
    c = store.pool_counts()
    held = f" · {c['heldout']} held out for the arena" if c["heldout"] else ""
    return f"**{c['prompts']}** prompt{'s' if c['prompts'] != 1 else ''} in the pool · **{c['pending']}** pending · **{c['done']}** done{held}"
