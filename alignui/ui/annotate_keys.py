"""Keyboard shortcuts of the Annotate tab (browser-side JavaScript, injected with launch(head=...)).

Owns: the key map (shown on the buttons, so the two cannot drift apart) and
the one document-level keydown listener. A shortcut clicks the button it
names, so the keyboard and the mouse run the same server events.

Invariants:
- Nothing fires while the focus is in a text field, except Enter in the prompt
  box (submit, then leave the box so the next keys vote), Ctrl/Cmd+Enter in the
  edit box (save) and Escape (leave the field; in the edit box: cancel).
- Keys fire only while the Annotate tab is visible (other tabs may reuse letters).
"""

from __future__ import annotations

import json

#: key -> element id of the button it clicks; the first key of each is printed on the button.
VOTE_KEYS = {"a": ("a", "1"), "b": ("b", "2"), "tie": ("t", "3"), "both_bad": ("x", "4"), "skip": ("s", "5")}
ACTION_KEYS = {"next-prompt": "n", "undo": "u", "edit-winner": "e", "continue-conv": "c"}


def key_hint(key: str) -> str:
    return f"[{key.upper()}]"


def _key_map() -> dict[str, str]:
    keys = {k: f"vote-{verdict}" for verdict, ks in VOTE_KEYS.items() for k in ks}
    keys.update({k: elem for elem, k in ACTION_KEYS.items()})
    return keys


_SCRIPT = """
(() => {
  if (window.__alignuiAnnotateKeys) return;
  window.__alignuiAnnotateKeys = true;
  const KEYS = %s;
  const shown = (el) => el && el.offsetParent !== null;
  const NOT_TEXT = ['checkbox', 'radio', 'button', 'submit', 'range', 'file', 'color'];
  const isTyping = (t) => t && t.matches && (t.isContentEditable || t.matches('textarea, select') ||
                                            (t.matches('input') && !NOT_TEXT.includes((t.type || '').toLowerCase())));
  const press = (id) => {
    const el = document.getElementById(id);
    if (!shown(el)) return false;
    const target = el.tagName === 'BUTTON' || el.tagName === 'INPUT' ? el : (el.querySelector('input, button') || el);
    if (target.disabled) return false;
    target.click();
    return true;
  };
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (isTyping(t)) {
      const inEditor = t.closest && t.closest('#edit-chosen');
      if (e.key === 'Escape') { if (inEditor) press('cancel-edit'); t.blur(); e.preventDefault(); return; }
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && inEditor) { e.preventDefault(); press('save-edit'); return; }
      if (e.key === 'Enter' && !e.shiftKey && t.closest && t.closest('#prompt')) { setTimeout(() => t.blur(), 0); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    if (!shown(document.getElementById('vote-a'))) return;  // the Annotate tab is not on screen
    if (e.key === '/') {
      const box = document.querySelector('#prompt textarea, #prompt input');
      if (box) { e.preventDefault(); box.focus(); }
      return;
    }
    const id = KEYS[e.key.toLowerCase()];
    if (id && press(id)) e.preventDefault();
  });
})();
"""

HEAD = "<script>" + _SCRIPT % json.dumps(_key_map()) + "</script>"

def _focus_when_shown(selector: str, condition: str, at_end: bool) -> str:
    """JS run after an event: focus `selector` once it is on screen (polled: outputs render after the event ends)."""
    cursor = "box.setSelectionRange(box.value.length, box.value.length);" if at_end else ""
    return ("() => { let tries = 0; const poll = () => { const box = document.querySelector('%s'); "
            "if (box && box.offsetParent !== null) { if (%s) { box.focus(); %s } return; } "
            "if (++tries < 40) setTimeout(poll, 50); }; setTimeout(poll, 50); }" % (selector, condition, cursor))


#: After an event: focus the prompt box when it is empty (the annotator is to type the next prompt or turn).
FOCUS_EMPTY_PROMPT = _focus_when_shown("#prompt textarea", "!box.value", at_end=False)
#: After the editor opens: focus it with the cursor at the end of the chosen response.
FOCUS_EDITOR = _focus_when_shown("#edit-chosen textarea", "true", at_end=True)
#: After a vote click: focus the name box when it is empty and editable (the vote was refused for want of a name).
FOCUS_EMPTY_NAME = _focus_when_shown("#annotator textarea", "!box.value.trim() && !box.disabled", at_end=False)
