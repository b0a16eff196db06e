"""The prompt pool: reading pasted lines and files, adding (admins only once configured), draw order, counts."""

import json
import random

import pytest

from alignui.db import NewGeneration, Store
from alignui.errors import UserError
from alignui.team.identity import Identity, PermissionDenied
from alignui.annotation.pool import add_to_pool, describe_counts, draw, parse_file, parse_lines

ADMIN = Identity("op", "admin", "login")
ANN = Identity("ann", "annotator", "typed")


def user(text):
    return [{"role": "user", "content": text}]


def pair_on(store, prompt_id, messages, verdict=None, annotator="ann", meta=None):
    gen = NewGeneration("base", "x")
    c = store.save_pair(messages, gen, gen, annotator=annotator, prompt_id=prompt_id, meta=meta)
    if verdict:
        store.decide(c.id, verdict, annotator=annotator)
    return c


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        yield s


def test_pasted_lines_become_one_prompt_each():
    assert parse_lines("  What is a cat?\n\n  Name a fruit.  \n") == [user("What is a cat?"), user("Name a fruit.")]


def test_files_in_every_accepted_format(tmp_path):
    (tmp_path / "p.txt").write_text("one\n\ntwo\n")
    (tmp_path / "p.jsonl").write_text("\n".join([
        json.dumps("plain string"), json.dumps({"prompt": "from prompt"}), json.dumps({"instruction": "from instr"}),
        json.dumps({"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}),
    ]) + "\n")
    (tmp_path / "p.csv").write_text('id,question\n1,"a, with comma"\n2,second\n')
    assert parse_file(tmp_path / "p.txt") == [user("one"), user("two")]
    got = parse_file(tmp_path / "p.jsonl")
    assert got[:3] == [user("plain string"), user("from prompt"), user("from instr")]
    assert got[3] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert parse_file(tmp_path / "p.csv") == [user("a, with comma"), user("second")]


@pytest.mark.parametrize("name, content, fragment", [
    ("bad.jsonl", '"ok"\n{not json}\n', "bad.jsonl line 2 is not valid JSON"),
    ("bad.jsonl", '{"answer": "x"}\n', "no prompt field; name it one of prompt"),
    ("bad.jsonl", '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n',
     "must end with a user message"),
    ("bad.csv", 'prompt\n"fine"\n"  "\n', None),  # blank cells are skipped, not an error
    ("bad.pdf", "x", "prompts can be read from .txt, .jsonl, .csv"),
])
def test_unreadable_rows_are_named(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_text(content)
    if fragment is None:
        assert parse_file(path) == [user("fine")]
        return
    with pytest.raises(UserError, match=fragment):
        parse_file(path)


def test_adding_is_all_or_nothing_and_skips_duplicates(store, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('"fine"\n{"nope": 1}\n')
    with pytest.raises(UserError, match="line 2"):
        add_to_pool(store, ADMIN, text="pasted", files=[bad])
    assert store.pool_counts()["prompts"] == 0
    result = add_to_pool(store, ADMIN, text="a\nb\na\n")
    assert (result.added, result.duplicates) == (2, 1)
    assert add_to_pool(store, ADMIN, text="b\nc").describe() == (
        "Added 1 prompt to the pool; 1 already in the pool were skipped.")
    with pytest.raises(UserError, match="nothing to add"):
        add_to_pool(store, ADMIN, text=" \n ")


def test_only_admins_add_once_admins_are_configured(store):
    with pytest.raises(PermissionDenied, match="ann may not import"):
        add_to_pool(store, ANN, text="x")
    assert store.pool_counts()["prompts"] == 0


def test_draw_order_unannotated_first_then_fewest_votes_and_never_heldout(store):
    store.add_prompts_bulk([user(t) for t in ("p0", "p1", "p2")])
    store.add_prompts_bulk([user("held")], split="heldout")
    ids = {store.get_prompt(pid).last_user_text: pid for pid, in store.query("SELECT id FROM prompts")}
    pair_on(store, ids["p0"], user("p0"), "a", annotator="bob")
    pair_on(store, ids["p0"], user("p0"), "b", annotator="cy")
    pair_on(store, ids["p1"], user("p1"), "tie", annotator="bob")
    rng = random.Random(0)
    assert draw(store, "ann", rng).last_user_text == "p2"  # the only prompt without a vote
    pair_on(store, ids["p2"], user("p2"), "skip", annotator="dan")  # a skip is not a vote
    assert draw(store, "ann", rng).last_user_text == "p2"
    pair_on(store, ids["p2"], user("p2"), "a", annotator="dan")
    assert draw(store, "ann", rng).last_user_text in ("p1", "p2")  # one vote each; p0 has two
    assert draw(store, "ann", rng, exclude=(ids["p1"], ids["p2"])).last_user_text == "p0"
    assert store.pool_counts() == {"prompts": 3, "pending": 0, "done": 3, "heldout": 1}


def test_an_annotator_never_draws_what_they_already_judged_or_skipped(store):
    store.add_prompts_bulk([user("p0"), user("p1")])
    rng = random.Random(1)
    first = draw(store, "ann", rng)
    pair_on(store, first.id, first.messages, "skip")
    second = draw(store, "ann", rng)
    assert second.id != first.id
    pending = pair_on(store, second.id, second.messages)  # generated, not judged yet: still drawable
    assert draw(store, "ann", rng).id == second.id
    store.decide(pending.id, "a", annotator="ann")
    assert draw(store, "ann", rng) is None
    assert draw(store, "bob", rng) is not None


def test_a_vote_through_a_system_prompt_counts_for_the_pool_prompt(store):
    store.add_prompts_bulk([user("q")])
    pool_id = draw(store, "ann", random.Random(0)).id
    with_system = [{"role": "system", "content": "be brief"}] + user("q")
    pid = store.ensure_prompt(with_system, source="pool_variant")
    assert pid != pool_id
    pair_on(store, pid, with_system, "a", meta={"pool_prompt": pool_id})
    assert store.pool_counts()["done"] == 1
    assert describe_counts(store) == "**1** prompt in the pool · **0** pending · **1** done"
    assert draw(store, "bob", random.Random(0)).id == pool_id  # the variant itself is never drawn


def test_later_turns_are_not_in_the_pool(store):
    store.ensure_prompt(user("q") + [{"role": "assistant", "content": "a"}] + user("more"), source="conversation")
    assert store.pool_counts()["prompts"] == 0 and draw(store, "ann", random.Random(0)) is None


def test_find_or_insert_stores_a_conversation_once(store):
    a = store.ensure_prompt(user("same"))
    assert store.ensure_prompt(user("same")) == a == store.find_prompt(user("same"))
    assert store.find_prompt(user("other")) is None
