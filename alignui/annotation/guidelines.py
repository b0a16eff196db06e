"""Annotation guidelines: the markdown text annotators read before judging, editable by the operator.

Owns: the default text, reading the current text from the settings table, and
saving a new text (an `edit_guidelines` action: admins only once admins are
configured; the check runs here, server side, whoever calls).
"""

from __future__ import annotations

from alignui.db import Store
from alignui.errors import UserError
from alignui.team.identity import Identity, require

SETTING_KEY = "guidelines"
MAX_CHARS = 20_000

DEFAULT_GUIDELINES = """\
**Pick the response you would rather receive.** In order of importance:

1. **Helpful and correct**: answers what was asked; facts are right; no made-up details.
2. **Harmless**: refuses clearly harmful requests politely; no insults.
3. **Clear**: easy to read, no rambling or repetition; length fits the question.

- **Tie**: both are about equally good. **Both bad**: neither is acceptable (still useful data).
- **Skip**: you cannot judge (unclear prompt, outside your knowledge).
- **Edit** (E, then A or B): fix small mistakes in the winner before saving; the original is kept too.
- **Continue** (C, then A or B): go on talking with the winner and compare the next turn.
"""


def load(store: Store) -> str:
    return store.get_setting(SETTING_KEY) or DEFAULT_GUIDELINES


def save(store: Store, identity: Identity, text: str) -> str:
    """Store new guidelines (empty text restores the default); returns the text now in force."""
    require(identity, "edit_guidelines")
    text = (text or "").strip()
    if len(text) > MAX_CHARS:
        raise UserError(f"the guidelines are {len(text)} characters; keep them under {MAX_CHARS} "
                        "(link to a longer document instead)")
    store.put_setting(SETTING_KEY, text or None, by=identity.name)
    return load(store)
