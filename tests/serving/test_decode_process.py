"""--decode-process: the shared decode steps in a child process (alignui.serving.decode_process), on the real demo
model and a real child: the same tokens as in the web process, requests of several annotators joined into one batch
there, a closed stream cancelled there, a killed child answered with one line and generation going on, the served
app's pairs recorded as decoded there, and no child left behind when the app closes."""

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
from gradio_client import Client

from alignui.errors import UserError
from alignui.serving.generation import SamplingSettings, stream_rows
from alignui.serving.loading import load_model
from alignui.serving.scheduler import batch_scheduler

from conftest import served
from serving.conftest import never_ending_copy
from serving.test_scheduler import ask, finish, in_threads, until

GREEDY = SamplingSettings(temperature=0, max_new_tokens=40)
SAMPLED = SamplingSettings(temperature=0.9, top_p=0.9, max_new_tokens=40)


@pytest.fixture
def handles(config):
    """The demo model loaded twice: decoding in the web process, and with --decode-process (its child loaded)."""
    plain = load_model(config, log=lambda m: None)
    child = load_model(replace(config, decode_process=True), log=lambda m: None)
    finish(child, ask("warm up"), [GREEDY])  # the first request waits for the child's own load
    yield plain, child
    plain.close()
    child.close()


@pytest.fixture
def endless_child(config, demo_model_dir, tmp_path):
    """--decode-process on a copy of the demo model that never ends a response (its end-of-sequence token is the
    pad token, never sampled): every response runs to max_new_tokens, so a cancel or a kill lands mid-stream."""
    model = never_ending_copy(demo_model_dir, tmp_path / "endless")
    tok = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps({**tok, "eos_token": tok["pad_token"]}))
    handle = load_model(replace(config, model=str(model), decode_process=True), log=lambda m: None)
    finish(handle, ask("warm up"), [GREEDY])
    yield handle
    handle.close()


def test_a_seeded_request_decodes_to_the_same_tokens_in_the_child_as_in_the_web_process(handles):
    plain, child = handles
    assert batch_scheduler(child) is child.decoder and batch_scheduler(plain) is not plain.decoder
    for seed in (3, 11):
        here = finish(plain, ask("Tell me about cats"), [GREEDY, SAMPLED], seed=seed)
        there = finish(child, ask("Tell me about cats"), [GREEDY, SAMPLED], seed=seed)
        assert there[0] == here[0] and all(t for t in there[0])
        assert [g.n_tokens for g in there[2]] == [g.n_tokens for g in here[2]]
        assert all(g.params["decode_process"] is True for g in there[2])
        assert all("decode_process" not in g.params for g in here[2])


def test_requests_of_several_annotators_share_decode_steps_in_the_child(handles):
    plain, child = handles
    prompts = [ask(f"Tell me about animal number {i}") for i in range(6)]
    alone = [finish(plain, p, [GREEDY, GREEDY])[0] for p in prompts]
    before = child.decoder.child_stats()
    threads, results, errors = in_threads([lambda p=p, i=i: finish(child, p, [GREEDY, GREEDY], owner=f"a{i}")
                                           for i, p in enumerate(prompts)])
    for t in threads:
        t.join()
    assert not errors
    stats = child.decoder.child_stats()
    assert [r[0] for r in results] == alone  # greedy rows do not depend on their batch neighbours
    steps = stats["rows_per_forward"][len(before["rows_per_forward"]):]
    assert max(steps) > 2, steps  # pairs of different annotators were decoded in the same forward passes
    assert set(stats["admitted"][len(before["admitted"]):]) == {f"a{i}" for i in range(6)}


def test_a_closed_stream_is_cancelled_in_the_child_and_the_other_request_finishes(endless_child):
    child = endless_child
    long = SamplingSettings(temperature=0.9, max_new_tokens=480)  # the demo model's context is 512
    leaving = stream_rows(child, ask("Tell me about the sea"), [long, long], seed=5, owner="leaves")
    next(leaving)
    until(lambda: child.decoder.waiting() == 0, "the leaving request's first tokens")
    threads, results, errors = in_threads([lambda: finish(child, ask("Tell me about dogs"), [GREEDY], owner="stays")])
    leaving.close()  # what Gradio does when the tab closes or a new event replaces this one
    threads[0].join()
    assert not errors and results[0][2] is not None
    until(lambda: not child.decoder._inflight, "the child to answer the cancel")
    stats = child.decoder.child_stats()
    assert stats["admitted"][-2:] == ["leaves", "stays"] and sorted(stats["ended"][-2:]) == ["cancelled", "end"]
    assert len(results[0][2][0].text) > 0 and results[0][2][0].n_tokens == GREEDY.max_new_tokens


def test_a_killed_child_fails_the_request_in_flight_with_one_line_and_generation_goes_on(endless_child):
    child = endless_child
    long = SamplingSettings(temperature=0.9, max_new_tokens=480)  # the demo model's context is 512
    rows = stream_rows(child, ask("Tell me about the moon"), [long], seed=2, owner="x")
    next(rows)
    os.kill(child.decoder.proc.pid, signal.SIGKILL)
    with pytest.raises(UserError) as err:
        for _ in rows:
            pass
    assert str(err.value) == "the decode process stopped (it was killed by signal 9); try again"
    until(lambda: not child.decoder.serving, "the web side to notice")
    texts, _, gens = finish(child, ask("Tell me about the moon"), [GREEDY])  # decoded in the web process now
    assert texts[0] and "decode_process" not in gens[0].params


def test_the_served_app_decodes_in_its_child_and_leaves_none_behind(config):
    with served(config, decode_process=True) as app:
        decoder = app.ctx.model.decoder
        text_a, text_b, pair_id = Client(app.url, verbose=False).predict("Tell me about birds",
                                                                          api_name="/generate_pair")
        assert text_a and text_b and pair_id
        params = app.ctx.store.query("SELECT params FROM generations")
        assert len(params) == 2 and all('"decode_process": true' in p[0] for p in params)
    assert decoder.proc.poll() is not None  # closed with the app


def test_decode_process_is_ignored_with_a_reason_where_it_cannot_serve(config):
    lines = []
    handle = load_model(replace(config, decode_process=True, batching=False), log=lines.append)
    try:
        assert handle.decoder is None
        assert any("--decode-process needs shared decode steps" in line for line in lines), lines
    finally:
        handle.close()


def test_a_child_that_cannot_load_says_why_and_generation_stays_in_the_web_process(config, tmp_path):
    from alignui.serving.decode_process import DecodeProcess

    handle = load_model(config, log=lambda m: None)
    (tmp_path / "not-a-model").mkdir()  # a directory without a model: the child's load fails
    lines = []
    handle.decoder = DecodeProcess(replace(config, model=str(tmp_path / "not-a-model")), log=lines.append)
    try:
        until(lambda: not handle.decoder.serving, "the child's failed load")
        assert handle.decoder.stopped_why.startswith("it could not load the model: ValueError: ")
        assert len(lines) == 1 and "\n" not in lines[0] and "decoding stays in the web process" in lines[0]
        texts, _, gens = finish(handle, ask("Tell me about cats"), [GREEDY])
        assert texts[0] and "decode_process" not in gens[0].params
    finally:
        handle.close()


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: a child started by any of its threads)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_a_killed_server_leaves_no_decode_process_behind(server_process, monkeypatch):
    monkeypatch.setenv("ALIGNUI_DECODE_PROCESS", "1")
    server = server_process().start()
    until(lambda: children_of(server.proc.pid), "the decode process")
    child = children_of(server.proc.pid)[0]
    assert "alignui.serving.decode_process" in Path(f"/proc/{child}/cmdline").read_text()
    server.stop(kill=True)  # SIGKILL: nothing of the server runs to close it
    until(lambda: not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2],
          "the orphaned decode process to exit")


def test_an_arena_pair_of_the_base_and_an_adapter_decodes_in_the_child_as_in_the_web_process(handles, store, storage):
    from alignui.serving.adapters import adapter_server
    from alignui.serving.generation import PairSettings

    from arena.test_arena import make_adapter

    plain, child = handles
    make_adapter(store, storage, "dpo-child")
    run = store.get_run("dpo-child")
    greedy = PairSettings.same(temperature=0.0, max_new_tokens=24)
    here = list(adapter_server(plain).stream_two(ask("What is the sun?"), None, run, greedy))[-1].result
    there = list(adapter_server(child).stream_two(ask("What is the sun?"), None, run, greedy))[-1].result
    assert [g.text for g in there] == [g.text for g in here] and here[0].text != here[1].text
    assert [g.model_ref for g in there] == ["base", "dpo-child"]
    assert all(g.params["decode_process"] is True for g in there)
    assert batch_scheduler(adapter_server(child).view(["__base__", "x"])) is child.decoder


def test_an_adapter_the_child_cannot_load_fails_that_request_alone_in_one_line(handles, tmp_path):
    from alignui.serving.generation import encode_prompt
    from alignui.serving.scheduler import stream_scheduled

    _, child = handles
    decoder, ids = child.decoder, encode_prompt(child, ask("What is the sun?"), GREEDY.max_new_tokens)
    with pytest.raises(UserError, match=r"^adapter ghost is not loaded here"):
        decoder.request("x", ids, [GREEDY], 1, adapters=["ghost"])
    decoder._adapter_paths = lambda: {"ghost": str(tmp_path / "gone")}  # loaded here, then removed: a race
    with pytest.raises(UserError, match=r"^the decode process could not load the adapter at .*gone \(\w+: [^\n]*\)$"):
        list(stream_scheduled(decoder, decoder.request("x", ids, [GREEDY], 1, adapters=["ghost"])))
    texts, _, gens = finish(child, ask("What is the sun?"), [GREEDY])  # the child serves on
    assert texts[0] and gens[0].params["decode_process"] is True
