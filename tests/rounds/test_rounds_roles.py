"""The Train tab's Next round buttons, called as an attacker would: a signed-in annotator sends the browser's
raw event requests (queue/join) for Generate, Export and Train; each is refused on the server and nothing is
written. An admin's Generate does queue the round's pairs, and an annotator then gets them in Annotate.
"""

import pytest

from alignui.runs import RunDir
from conftest import served
from team.test_roles import ACCOUNTS, ADMINS, REFUSED, call_event, fn_by_trigger, logged_in_http, refusal


@pytest.fixture(scope="module")
def team_server(tmp_path_factory, demo_model_dir):
    from alignui.config import AppConfig
    from conftest import free_port

    config = AppConfig(storage=tmp_path_factory.mktemp("team") / "storage", model="demo", port=free_port(),
                       offline=True)
    with served(config, users=ACCOUNTS, admins=ADMINS) as app:
        yield app


def finished_parent(server, demo_model_dir):
    """A finished DPO run with a real adapter for the served demo model (a fresh LoRA made with PEFT)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    layout, store = server.ctx.layout, server.ctx.store
    run = RunDir.create(layout, "dpo-parent")
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(str(run.adapter_dir))
    run.write_config("dpo", {"base_model": "demo", "max_steps": 2})
    run.write_lineage({"run_id": run.id, "method": "dpo", "snapshot": "closer", "base_model": "demo", "round": 1})
    run.update_status(state="done", method="dpo")
    from alignui.training.app.runner import index_row

    store.upsert_run(run.id, **index_row(run))
    store.add_prompt([{"role": "user", "content": "What is a cat?"}])
    return run


def test_an_annotator_cannot_generate_export_or_train_a_round(team_server, demo_model_dir):
    finished_parent(team_server, demo_model_dir)
    store, layout = team_server.ctx.store, team_server.ctx.layout
    ann = logged_in_http(team_server, "ann")
    for elem_id, data, action in (("round-generate", ["dpo-parent", 4, "seeds", 0.0], "train"),
                                  ("round-export", ["dpo-parent", 4, "seeds", 0.0], "export"),
                                  ("round-train", ["dpo-parent", "any-snapshot"], "train")):
        answer = call_event(ann, fn_by_trigger(team_server, elem_id), data)
        assert REFUSED.format(action) in refusal(answer), (elem_id, answer)
    assert store.round_counts("round:dpo-parent")["pairs"] == 0
    assert sorted(p.name for p in layout.runs_dir.iterdir()) == ["dpo-parent"]
    assert not layout.snapshots_dir.is_dir() or list(layout.snapshots_dir.iterdir()) == []


def test_an_admins_generate_queues_pairs_that_annotate_hands_to_an_annotator(team_server):
    store = team_server.ctx.store
    boss = logged_in_http(team_server, "boss")
    answer = call_event(boss, fn_by_trigger(team_server, "round-generate"), ["dpo-parent", 1, "base", 0.0])
    assert answer["success"] is True, answer
    assert store.round_counts("round:dpo-parent") == {"pairs": 1, "queued": 1, "pending": 1, "voted": 0,
                                                      "pairs_ab": 0}
    pair = store.claim_queued_pair("ann")  # what Annotate's Next does before drawing a pool prompt
    assert pair is not None and pair.annotator == "ann" and {pair.model_a, pair.model_b} == {"base", "dpo-parent"}
