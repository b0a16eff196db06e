"""What the Admin tab does, as typed functions: roles, overlap k, gold items, removing votes, backups,
and the read-only views (people, agreement, disputed pairs).

Owns: the permission check in front of every operator action (each function
that changes something calls alignui.team.identity.require first, so the UI, the
named API and any future caller are refused alike) and the one-line answers
the UI shows. The UI (alignui/ui/admin.py) only unpacks widgets and calls these.
"""

from __future__ import annotations

from typing import Any

from alignui.arena.agreement import disputed_pairs, report_for_store
from alignui.db import Store
from alignui.errors import UserError
from alignui.vocab import last_user_turn
from alignui.team.identity import ROLES, Identity, clean_name, require
from alignui.team.backup import backup_now, remote_for

PEOPLE_COLUMNS = ["name", "role", "votes", "last vote"]
ANNOTATOR_COLUMNS = ["annotator", "votes", "compared", "agrees with majority", "gold items", "gold accuracy"]
DISPUTED_COLUMNS = ["pair", "prompt", "response A", "response B", "votes", "agreement"]


def set_role(store: Store, identity: Identity, name: str, role: str) -> str:
    require(identity, "manage_users")
    name = clean_name(name)
    if name is None:
        raise UserError("type the user name whose role should change")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    store.set_role(name, role, by=identity.name)
    return f"{name} is now {'an admin' if role == 'admin' else 'an annotator'}."


def set_overlap(store: Store, identity: Identity, k: Any) -> str:
    require(identity, "configure")
    k = store.set_overlap_k(k, by=identity.name)
    return (f"Each pair is now judged by {k} annotators." if k > 1
            else "Each pair is now judged once (no overlap, no agreement figures).")


def mark_gold(store: Store, identity: Identity, pair_id: str, verdict: str, note: str | None = None) -> str:
    require(identity, "configure")
    gold = store.add_gold(pair_id, verdict, by=identity.name, note=(note or "").strip() or None)
    return f"Pair {pair_id.strip()} is a gold item; the right answer is {gold.verdict}."


def unmark_gold(store: Store, identity: Identity, pair_id: str) -> str:
    require(identity, "configure")
    store.remove_gold((pair_id or "").strip())
    return f"Pair {pair_id.strip()} is no longer a gold item."


def remove_votes(store: Store, identity: Identity, annotator: str) -> str:
    require(identity, "delete")
    n = store.delete_votes_by(annotator, by=identity.name)
    if not n:
        return f"{annotator.strip()} has no comparisons to remove."
    return (f"Removed {n} comparison{'s' if n != 1 else ''} by {annotator.strip()} "
            "(soft delete: kept in the database, left out of exports and figures).")


def backup(store: Store, config, identity: Identity, repo_id: str | None) -> str:
    require(identity, "push")
    repo_id = (repo_id or "").strip() or config.backup_repo or ""
    if not repo_id:  # name what is missing: the repo first (the token alone was all an empty box got before)
        token = "" if config.hf_token else ", and a token with write access (set HF_TOKEN)"
        raise UserError("a backup needs a repo: type a private dataset id such as my-name/alignui-backup in the "
                        f"box, or set ALIGNUI_BACKUP_REPO{token}; nothing was uploaded")
    return backup_now(store, config.storage, remote_for(repo_id, config)).describe()


# -- read-only views -------------------------------------------------------------------------------
def gold_rows(store: Store, viewer: Identity) -> list[list]:
    """The gold items (pair, right answer, note, marked by) for an admin; nothing for anyone else: the answers
    of attention checks never leave the server except to admins."""
    if not viewer.is_admin:
        return []
    return [[g.item, g.verdict, g.note or "", g.created_by or ""] for g in store.gold_items()]


def people(store: Store, configured_admins: frozenset[str]) -> list[list]:
    """Everyone with a role or a vote; configured admins (ALIGNUI_ADMINS, the Space owner) are marked."""
    rows = {u.name: [u.name, u.role, u.votes, u.last_vote] for u in store.users_overview()}
    for name in configured_admins:
        rows.setdefault(name, [name, "admin", 0, None])
        rows[name][1] = "admin (configured)"
    return [[n, role, votes, last.strftime("%Y-%m-%d %H:%M") if last else ""]
            for n, role, votes, last in sorted(rows.values())]


def _clip(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.0%}"


def agreement_tables(store: Store, identity: Identity, min_agreement: float = 0.6
                     ) -> tuple[str, list[list], list[list]]:
    """(headline, per-annotator rows, disputed pairs with their texts) for the Admin tab; admins only (it shows
    every annotator's votes and pair ids)."""
    require(identity, "review_everyones_votes")
    report, comparisons = report_for_store(store)
    lines = [report.describe()]
    extra = [f"{name} {value:.3f}" for name, value in (("Cohen's kappa", report.cohen), ("Fleiss' kappa",
             report.fleiss), ("Krippendorff's alpha", report.alpha)) if value is not None]
    if extra:
        lines.append("All figures: " + " · ".join(extra) + f". Overlap k = {store.overlap_k()}.")
    annotators = [[s.name, s.rated, s.compared, _pct(s.agreement), s.gold_seen, _pct(s.gold_accuracy)]
                  for s in report.per_annotator]
    disputed = []
    for pair in disputed_pairs(comparisons, min_agreement)[:50]:
        first = pair.comparisons[0]
        votes = ", ".join(f"{v} x{n}" for v, n in sorted(pair.counts.items()))
        disputed.append([first.id, _clip(last_user_turn(first.messages)), _clip(first.text_a), _clip(first.text_b), votes, _pct(pair.share)])
    return "\n\n".join(lines), annotators, disputed
