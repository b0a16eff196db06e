"""Fixture files in the public datasets' real formats import to exactly the expected pairs (or prompts)."""

import gzip
import json
import shutil

import pytest

from alignui.data import ImportOptions, import_source, preview_source
from alignui.db import Store
from alignui.db.records import messages_hash
from alignui.team.identity import LOCAL_OPERATOR, Identity, PermissionDenied
from conftest import REPO

FIX = REPO / "tests" / "fixtures"
ADMIN = Identity("tester", "admin", "typed")


def u(text):
    return {"role": "user", "content": text}


def a(text):
    return {"role": "assistant", "content": text}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "a.duckdb") as s:
        yield s


def run(store, name, **options):
    return import_source(store, str(FIX / name) if not str(name).startswith("/") else name,
                         ImportOptions(**options), ADMIN).as_dict()


def pairs(store):
    got = [(json.loads(r.messages), r.text_a, r.text_b, json.loads(r.meta) if r.meta else {}, r.source, r.model_a)
           for r in store.export_rows()]
    return sorted(got, key=lambda p: (key(p[0]), p[1]))


def key(messages):
    return json.dumps(messages, sort_keys=True)


def as_set(store):
    return {(key(p[0]), p[1], p[2]) for p in pairs(store)}


def expect(*triples):
    return {(key(prompt), chosen, rejected) for prompt, chosen, rejected in triples}


def test_trl_plain_strings(store):
    summary = run(store, "trl_plain.jsonl")
    assert summary == {"imported": 3, "skipped": 0, "reasons": {}, "format": "trl", "kind": "pairs",
                       "source": "import:trl_plain.jsonl", "rows": 3, "import_id": summary["import_id"]}
    assert as_set(store) == expect(([u("The sky is")], " blue.", " green."),
                                   ([u("Water boils at")], " 100 degrees Celsius at sea level.", " 50 degrees."),
                                   ([u("Name a prime number:")], " 7", " 8"))
    got = pairs(store)
    assert {p[5] for p in got} == {"import:trl"} and {p[4] for p in got} == {"import:trl_plain.jsonl"}
    for messages, content_hash in store.query("SELECT messages, content_hash FROM prompts"):
        assert content_hash == messages_hash(json.loads(messages))  # the Annotate tab's prompt identity
    assert [p[3] for p in got if p[3]] == [{"margin": 2.5}]


def test_trl_conversational_multi_turn_and_system(store):
    assert run(store, "trl_conversational.jsonl")["imported"] == 4
    assert as_set(store) == expect(
        ([u("What color is the sky?")], "It is blue.", "It is green."),
        ([{"role": "system", "content": "Answer briefly."}, u("Where is the sun?")], "In the sky.", "In the sea."),
        ([u("I need a name for my cat."), a("How about Miso?"), u("Something longer, please.")],
         "Sir Reginald Whiskerton.", "Cat."),
        ([u("Say \"hi\" in French, with an accent: é")], "Salut — ça va ? \U0001F600", "Hola"))


def test_trl_implicit_prompt_strings_and_messages(store):
    summary = run(store, "trl_implicit.json")
    assert (summary["imported"], summary["reasons"]) == (2, {"chosen equals rejected": 1})
    assert as_set(store) == expect(([u("The sky is")], " blue.", " green."),
                                   ([u("What color is the sky?")], "It is blue.", "It is green."))


def test_hh_rlhf_transcripts_multi_turn_and_empty_reply(store, tmp_path):
    gz = tmp_path / "train.jsonl.gz"  # the hub ships hh-rlhf as .jsonl.gz
    gz.write_bytes(gzip.compress((FIX / "hh_rlhf.jsonl").read_bytes()))
    summary = run(store, str(gz))
    assert summary["format"] == "hh-rlhf" and summary["imported"] == 2
    assert summary["reasons"] == {"empty reply": 1}
    assert as_set(store) == expect(
        ([u("What is a good way to learn to juggle?")],
         "Start with two soft balls and practise a steady arc from hand to hand before adding the third.",
         "Just throw things."),
        ([u("Can you help me plan a picnic?"), a("Sure. Where will it be?"), u("At the lake, for four people.")],
         "Pack sandwiches, fruit, water, a blanket and a bag for trash.", "Lakes are wet."))


def test_ultrafeedback_h4_parquet_keeps_scores(store):
    summary = run(store, "ultrafeedback_binarized.parquet")
    assert (summary["format"], summary["imported"]) == ("ultrafeedback", 2)
    got = pairs(store)
    assert [(p[0], p[2]) for p in got] == [([u("Explain recursion in one sentence.")], "See recursion."),
                                           ([u("Write a haiku about autumn.")], "Autumn is a season.")]
    assert got[1][1].startswith("Red leaves drift and fall\n")
    assert got[1][3] == {"prompt_id": "p-001", "score_chosen": 9.0, "score_rejected": 3.0}


def test_argilla_csv_with_quotes_and_newlines_keeps_ratings(store):
    summary = run(store, "argilla_ultrafeedback.csv")
    assert (summary["format"], summary["imported"]) == ("ultrafeedback", 2)
    got = {p[0][0]["content"]: p for p in pairs(store)}
    soda = got["List three uses of baking soda."]
    assert soda[1] == ("1. Baking, as a leavening agent.\n2. Cleaning, as a gentle abrasive.\n3. Deodorising, "
                       "e.g. \"in the fridge\".")
    assert soda[2] == "Baking soda, I think, is used for cakes."
    assert soda[3] == {"source": "evol_instruct", "chosen_avg_rating": "4.75", "rejected_avg_rating": "2.25",
                       "chosen_model": "gpt-4"}


def test_oasst_message_trees_rank_pairs_and_exclusions(store):
    summary = run(store, "oasst1_messages.jsonl")
    assert summary["format"] == "oasst" and summary["imported"] == 4
    assert summary["excluded"] == {"deleted messages": 2, "replies under a deleted message": 2,
                                   "replies without a rank": 1}
    tea = [u("How do I make a cup of tea?")]
    r0 = "Boil water, pour it over a tea bag, steep 3-5 minutes, then remove the bag."
    assert as_set(store) == expect(
        (tea, r0, "Put tea in water and wait."), (tea, r0, "Use coffee instead."),
        (tea, "Put tea in water and wait.", "Use coffee instead."),
        (tea + [a(r0), u("And with milk?")], "Add a splash of milk after removing the bag, to taste.",
         "Milk first, always, no exceptions!"))
    meta = [p[3] for p in pairs(store) if p[2] == "Use coffee instead." and p[1] == r0][0]
    assert meta == {"chosen_id": "r0", "rejected_id": "r2", "chosen_rank": 0, "rejected_rank": 2,
                    "lang": "en", "message_tree_id": "t1"}


def test_oasst_nested_trees_export(store):
    assert run(store, "oasst1_trees.jsonl")["imported"] == 1
    assert as_set(store) == expect(([u("What is the capital of France?")], "Paris.", "Lyon."))


def test_prompt_lists_go_to_the_pool_with_split(store):
    summary = run(store, "prompts.txt")
    assert summary["kind"] == "prompts" and summary["imported"] == 2
    assert summary["reasons"] == {"duplicate within the source": 1}
    summary = run(store, "prompts.jsonl", split="heldout")
    assert summary["imported"] == 2
    rows = store.query("SELECT messages, split, source, meta FROM prompts ORDER BY created_at, id")
    by_text = {json.loads(m)[-1]["content"]: (split, src, json.loads(meta) if meta else None)
               for m, split, src, meta in rows}
    assert by_text["Why do cats purr?"] == ("heldout", "import:prompts.jsonl", {"category": "science"})
    assert by_text["What is the tallest mountain?"] == ("train", "import:prompts.txt", None)
    assert store.query("SELECT count(*) FROM comparisons")[0][0] == 0


def test_saved_dataset_directory_with_split(store):
    assert run(store, str(FIX / "trl_saved_dataset"))["imported"] == 3  # 'train' by default
    summary = run(store, str(FIX / "trl_saved_dataset"), split="test")
    assert summary["imported"] == 1 and summary["split"] == "test"


def test_reimport_skips_duplicates_and_counts_them(store, tmp_path):
    run(store, "trl_conversational.jsonl")
    doubled = tmp_path / "doubled.jsonl"
    lines = (FIX / "trl_conversational.jsonl").read_text().splitlines()
    doubled.write_text("\n".join(lines + lines[:1]) + "\n")
    summary = run(store, str(doubled))
    assert summary["imported"] == 0 and summary["skipped"] == 5
    assert summary["reasons"] == {"already in the database": 4, "duplicate within the source": 1}
    assert store.table_counts()["comparisons"] == 4


def test_column_mapping(store, tmp_path):
    src = tmp_path / "mine.csv"
    src.write_text("question,good,bad\nWhat is 2+2?,4,5\n")
    summary = run(store, str(src), mapping="prompt=question,chosen=good,rejected=bad")
    assert summary["imported"] == 1 and as_set(store) == expect(([u("What is 2+2?")], "4", "5"))


def test_json_lines_named_json_and_column_oriented_json(store, tmp_path):
    lines = tmp_path / "lines.json"
    shutil.copy(FIX / "trl_plain.jsonl", lines)
    assert run(store, str(lines))["imported"] == 3
    cols = tmp_path / "cols.json"
    cols.write_text(json.dumps({"prompt": ["p1", "p2"], "chosen": ["c1", "c2"], "rejected": ["r1", "r2"]}))
    assert run(store, str(cols))["imported"] == 2


def test_forced_format_and_preview(store):
    preview = preview_source(str(FIX / "hh_rlhf.jsonl"), None, LOCAL_OPERATOR)
    assert preview.detected == "hh-rlhf" and preview.columns == ["chosen", "rejected"] and preview.rows == 3
    assert preview_source(str(FIX / "oasst1_messages.jsonl"), None, LOCAL_OPERATOR).detected == "oasst"
    assert run(store, "trl_plain.jsonl", format="trl")["format"] == "trl"


def test_importing_needs_the_admin_role(store):
    with pytest.raises(PermissionDenied, match="may not import"):
        import_source(store, str(FIX / "trl_plain.jsonl"), ImportOptions(), Identity("ann", "annotator"))
    assert store.table_counts()["comparisons"] == 0
