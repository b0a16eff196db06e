"""Roles: an annotator without the admin role is refused every privileged action, with a clear message,
in the core, through the named API (gradio_client logged in with Gradio auth) and in the browser."""

import json
import uuid
from dataclasses import replace

import httpx
import pytest
from gradio_client import Client

from alignui.team import admin as team
from alignui.db import NewGeneration
from alignui.team.identity import PermissionDenied, resolve
from conftest import served

ADMINS = frozenset({"boss"})
ACCOUNTS = (("boss", "pw-boss"), ("ann", "pw-ann"), ("bob", "pw-bob"))
REFUSED = r"ann may not {}: only admins can"


def seed_pair(store, annotator="bob", verdict="a"):
    pair = store.save_pair([{"role": "user", "content": "Q?"}], NewGeneration("base", "x"),
                           NewGeneration("base", "y"), annotator=annotator)
    return store.decide(pair.id, verdict)


def test_the_core_refuses_every_admin_action_of_an_annotator(ctx):
    ann = resolve(login_name="ann", admins=ADMINS)
    pair = seed_pair(ctx.store)
    config = replace(ctx.config, hf_token="hf_x", admins=ADMINS)
    attempts = {
        "manage users": lambda: team.set_role(ctx.store, ann, "ann", "admin"),
        "configure": lambda: team.set_overlap(ctx.store, ann, 3),
        "delete": lambda: team.remove_votes(ctx.store, ann, "bob"),
        "push": lambda: team.backup(ctx.store, config, ann, "me/backup"),
    }
    for action, attempt in attempts.items():
        with pytest.raises(PermissionDenied, match=REFUSED.format(action)):
            attempt()
    with pytest.raises(PermissionDenied, match=REFUSED.format("configure")):
        team.mark_gold(ctx.store, ann, pair.id, "a")
    # nothing changed
    assert ctx.store.admin_names() == frozenset() and ctx.store.overlap_k() == 1
    assert ctx.store.get_comparison(pair.id).verdict == "a" and ctx.store.gold_items() == []


def test_training_export_and_push_refuse_an_annotator_before_doing_anything(ctx):
    """The other tabs' core functions (train: #5's JobRunner, export/push: #4's export) check the role first."""
    from alignui.data.export import ExportOptions, export_snapshot, push_export
    from alignui.data.snapshot import SnapshotRef
    from alignui.training.dpo import DPOTrainConfig
    from alignui.training.app.runner import JobRunner

    ann = resolve(login_name="ann", admins=ADMINS)
    seed_pair(ctx.store)
    with pytest.raises(PermissionDenied, match=REFUSED.format("train")):
        JobRunner(ctx.layout, ctx.store).start("dpo", None, DPOTrainConfig(), ann)
    with pytest.raises(PermissionDenied, match=REFUSED.format("export")):
        export_snapshot(ctx.store, ctx.layout, ExportOptions(), ann)
    ref = SnapshotRef("snap", ctx.layout.snapshots_dir / "snap", {})
    with pytest.raises(PermissionDenied, match=REFUSED.format("push")):
        push_export(ref, "me/data", ann, token="hf_x")
    assert list(ctx.layout.runs_dir.iterdir()) == [] and list(ctx.layout.snapshots_dir.iterdir()) == []


@pytest.fixture
def team_server(config):
    """The app with Gradio's login page: boss is the admin, ann and bob annotate."""
    with served(config, users=ACCOUNTS, admins=ADMINS) as app:
        yield app


def login(server, name) -> Client:
    return Client(server.url, auth=(name, dict(ACCOUNTS)[name]), verbose=False)


def test_the_api_refuses_an_annotator_and_obeys_an_admin(team_server):
    store = team_server.ctx.store
    pair = seed_pair(store)
    ann = login(team_server, "ann")
    refused = [
        (("ann", "admin"), "/admin_set_role", "manage users"),
        (("bob",), "/admin_remove_votes", "delete"),
        (("me/backup",), "/admin_backup", "push"),
        ((5,), "/admin_set_overlap", "configure"),
        ((pair.id, "b", "trap"), "/admin_mark_gold", "configure"),
    ]
    for args, endpoint, action in refused:
        with pytest.raises(Exception, match=REFUSED.format(action)):
            ann.predict(*args, api_name=endpoint)
    assert store.get_comparison(pair.id).verdict == "a" and store.overlap_k() == 1 and not store.gold_items()
    assert store.admin_names() == frozenset()

    boss = login(team_server, "boss")
    message, _ = boss.predict("ann", "admin", api_name="/admin_set_role")
    assert message == "ann is now an admin."
    with pytest.raises(Exception, match="set HF_TOKEN"):  # past the permission check: now it wants a token
        boss.predict("me/backup", api_name="/admin_backup")
    message, _ = boss.predict("bob", api_name="/admin_remove_votes")
    assert message.startswith("Removed 1 comparison by bob")
    assert store.vote_counts()["total"] == 0


def test_without_a_login_the_api_is_closed(team_server):
    with pytest.raises(Exception):
        Client(team_server.url, verbose=False)  # Gradio auth: no session, no API
    with pytest.raises(Exception):
        Client(team_server.url, auth=("ann", "wrong"), verbose=False)


def browser_login(page, server, name):
    page.goto(server.url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(dict(ACCOUNTS)[name])
    page.get_by_role("button", name="Login").click()
    page.locator("#header").wait_for()


@pytest.mark.e2e
def test_the_admin_tab_is_read_only_for_an_annotator(team_server, page):
    from conftest import screenshot

    browser_login(page, team_server, "ann")
    page.get_by_role("tab", name="Admin").click()
    page.get_by_text("You are").wait_for()
    assert "ann (annotator, signed in)" in page.locator("#admin-status").inner_text()
    page.wait_for_function("() => document.querySelector('#admin-remove-votes').disabled")
    for button in ("#admin-set-role", "#admin-remove-votes", "#admin-backup", "#admin-mark-gold"):
        assert page.locator(button).is_disabled()
    screenshot(page, "admin-annotator")


@pytest.mark.e2e
def test_an_admin_removes_a_spammers_votes_in_the_browser(team_server, page):
    from conftest import screenshot

    seed_pair(team_server.ctx.store, annotator="spammer")
    browser_login(page, team_server, "boss")
    page.get_by_role("tab", name="Admin").click()
    page.get_by_text("You are").wait_for()
    assert "boss (admin, signed in)" in page.locator("#admin-status").inner_text()
    page.locator("#admin-remove-name textarea, #admin-remove-name input").first.fill("spammer")
    page.locator("#admin-remove-votes").click()
    page.get_by_text("Removed 1 comparison by spammer").wait_for()
    screenshot(page, "admin-after-removal")
    assert team_server.ctx.store.vote_counts()["total"] == 0


# -- raw HTTP: what a browser (or anyone with curl) sends, bypassing gradio_client and hidden-endpoint rules --
def logged_in_http(server, name) -> httpx.Client:
    http = httpx.Client(base_url=server.url, timeout=120)
    answer = http.post("login", data={"username": name, "password": dict(ACCOUNTS)[name]})
    assert answer.status_code == 200, answer.text
    return http


def fn_index(server, name: str) -> int:
    return next(i for i, fn in server.demo.fns.items() if fn.api_name == name or fn.name == name)


def call_event(http: httpx.Client, index: int, data: list) -> dict:
    """queue/join + the SSE stream, exactly as the browser does; returns the process_completed message, with the
    texts of the warnings (gr.Warning "log" messages) shown on the way under "warnings"."""
    session = uuid.uuid4().hex[:10]
    warnings: list[str] = []
    joined = http.post("gradio_api/queue/join", json={"data": data, "fn_index": index, "session_hash": session,
                                                       "event_data": None, "trigger_id": None})
    assert joined.status_code == 200, joined.text
    with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "log":
                    warnings.append(str(message.get("log") or message.get("message") or ""))
                if message.get("msg") == "process_completed":
                    return {**message, "warnings": warnings}
    raise AssertionError("the event never completed")


def test_raw_event_calls_are_checked_on_the_server(team_server):
    store = team_server.ctx.store
    seed_pair(store)
    ann = logged_in_http(team_server, "ann")
    refused = call_event(ann, fn_index(team_server, "admin_remove_votes"), ["bob"])
    assert refused["success"] is False and "ann may not delete: only admins can" in refused["output"]["error"]
    assert store.vote_counts()["total"] == 1
    boss = logged_in_http(team_server, "boss")
    done = call_event(boss, fn_index(team_server, "admin_remove_votes"), ["bob"])
    assert done["success"] is True and store.vote_counts()["total"] == 0


def refusal(answer: dict) -> str:
    """Why a UI event was refused: a UI refusal is a warning toast that changes nothing on the page (issue 13:
    no red Error badges over the inputs), an API-visible event's is an error."""
    return (answer.get("output") or {}).get("error") or " ".join(answer.get("warnings", []))


def fn_by_trigger(server, elem_id: str, event: str = "click") -> int:
    """The event function a button (or other component) with `elem_id` triggers."""
    ids = {bid for bid, block in server.demo.blocks.items() if getattr(block, "elem_id", None) == elem_id}
    found = [i for i, fn in server.demo.fns.items() if any(t[0] in ids and t[1] == event for t in fn.targets)]
    assert len(found) == 1, f"{elem_id}.{event}: {found}"
    return found[0]


def test_the_data_tabs_export_delete_fix_and_import_refuse_an_annotator(team_server):
    """The Data tab's buttons are UI-only (hidden) events; a hand-made request is refused all the same."""
    from conftest import REPO

    store = team_server.ctx.store
    pair = seed_pair(store)
    ann = logged_in_http(team_server, "ann")
    export = ["hf", False, False, 0.1, 1024, "keep_all", "", "", False, ""]
    attempts = [
        ("export-run", export, "export"),
        ("export-run", export[:6] + ["me/data", "hf_x", False, ""], "export"),  # push goes through export first
        ("delete-run", [pair.id, ""], "delete"),
        ("fix-run", [pair.id, "b", "boss"], "fix verdict"),  # typing an admin's name changes nothing
        ("import-run", [None, str(REPO / "tests" / "fixtures" / "trl_conversational.jsonl"), "auto", "", None, None,
                        None, ""], "import"),
    ]
    for elem_id, data, action in attempts:
        answer = call_event(ann, fn_by_trigger(team_server, elem_id), data)
        assert REFUSED.format(action) in refusal(answer), (elem_id, answer)
    assert store.vote_counts()["total"] == 1 and store.get_comparison(pair.id).verdict == "a"
    assert list(team_server.ctx.layout.snapshots_dir.iterdir()) == []

    boss = logged_in_http(team_server, "boss")
    assert call_event(boss, fn_by_trigger(team_server, "delete-run"), [pair.id, ""])["success"] is True
    assert store.vote_counts()["total"] == 0


@pytest.mark.e2e
def test_an_annotator_finds_export_in_the_data_tab_greyed_out_and_is_told_why(team_server, page):
    from conftest import screenshot

    seed_pair(team_server.ctx.store)
    browser_login(page, team_server, "ann")
    page.get_by_role("tab", name="Data").click()
    page.get_by_text("ann may not import, fix verdicts, delete or export: only admins can").first.wait_for()
    assert page.locator("#export-run").is_disabled()
    page.locator("#export-run").click(force=True)  # a click on the greyed-out button does nothing
    screenshot(page, "data-export-refused")
    assert list(team_server.ctx.layout.snapshots_dir.iterdir()) == []


def initial_inputs(server, index: int) -> list:
    """What the browser would send for an event with its inputs untouched: each component's first value."""
    return [getattr(block, "value", None) for block in server.demo.fns[index].inputs]


def test_the_train_tabs_start_export_and_push_refuse_an_annotator(team_server):
    ann = logged_in_http(team_server, "ann")
    start = fn_by_trigger(team_server, "train-start")
    answer = call_event(ann, start, initial_inputs(team_server, start))
    assert REFUSED.format("train") in refusal(answer), answer
    answer = call_event(ann, fn_by_trigger(team_server, "train-export"), [])
    assert REFUSED.format("export") in refusal(answer), answer
    assert list(team_server.ctx.layout.runs_dir.iterdir()) == []
    from alignui.runs import RunDir

    RunDir.create(team_server.ctx.layout, "dpo-finished")  # a run whose adapter someone might push
    answer = call_event(ann, fn_by_trigger(team_server, "train-push"), ["dpo-finished", "me/adapter", "hf_x"])
    assert REFUSED.format("push") in refusal(answer), answer


@pytest.mark.e2e
def test_an_annotator_finds_start_training_greyed_out_and_is_told_why(team_server, page):
    from conftest import screenshot

    browser_login(page, team_server, "ann")
    page.get_by_role("tab", name="Train").click()
    page.get_by_text("ann may not train, export or push adapters: only admins can").first.wait_for()
    assert page.locator("#train-start").is_disabled()
    page.locator("#train-start").click(force=True)
    screenshot(page, "train-start-refused")
    assert list(team_server.ctx.layout.runs_dir.iterdir()) == []
