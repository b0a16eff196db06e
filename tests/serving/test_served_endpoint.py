"""`--model endpoint:NAME`: a registered endpoint is THE served model, no local weights (alignui.serving.remote).

Real parts: `transformers serve` on the demo model as the endpoint (tests/serving/conftest.py), the real app on a
free port driven by gradio_client, the real CLI in subprocesses."""

import json
import subprocess
import sys
import textwrap

import pytest

from alignui.config import AppConfig, ConfigError
from conftest import REPO, free_port, served

NAME = "ep-quokka-7r"  # the served endpoint: a name that cannot occur in generated text by chance
OTHER = "ep-wombat-3x"  # a second endpoint (the same server): the arena's other contestant
SERVED = f"endpoint:{NAME}"
TABLES = ("prompts", "generations", "comparisons")


@pytest.fixture
def config(storage, openai_server):
    return AppConfig(storage=storage, model=SERVED, port=free_port(), offline=True,
                     endpoints=(openai_server.spec(NAME), openai_server.spec(OTHER)))


@pytest.fixture
def adapter_run(server, tmp_path):
    """A finished DPO run with an adapter directory: offered beside a local model, never beside an endpoint."""
    (tmp_path / "adapter").mkdir()
    return server.ctx.store.upsert_run("dpo-local-only", method="dpo", status="done", base_model="demo",
                                       adapter_path=str(tmp_path / "adapter"))


def stored(store, pair_id: str) -> list[tuple[str, dict]]:
    rows = store.query("SELECT g.model_ref, g.params FROM comparisons c JOIN generations g "
                       "ON g.id IN (c.gen_a, c.gen_b) WHERE c.id = ? ORDER BY g.id = c.gen_b", [pair_id])
    return [(ref, json.loads(params)) for ref, params in rows]


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "alignui", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def test_an_unknown_endpoint_name_is_one_line_naming_the_registered_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"'endpoint:nope' names no registered endpoint \(registered: a, b\)"):
        AppConfig(model="endpoint:nope", endpoints=("a=http://h/v1#m", "b=http://h/v1#m"))
    result = run_cli("serve", "--storage", str(tmp_path / "s"), "--model", "endpoint:nope", "--port",
                     str(free_port()), "--endpoint", "vllm=http://127.0.0.1:9/v1#Qwen/Qwen2.5-7B-Instruct", timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: --model 'endpoint:nope' names no registered endpoint (registered: vllm); use --model "
        "endpoint:<one of them>"]
    env_only = run_cli("serve", "--storage", str(tmp_path / "s"), "--port", str(free_port()), timeout=120,
                       env={"ALIGNUI_MODEL": "endpoint:nope", "ALIGNUI_ENDPOINTS": ""})
    assert env_only.returncode == 2 and len(env_only.stderr.strip().splitlines()) == 1
    assert "(none is registered); add it with --endpoint NAME=BASE_URL#MODEL" in env_only.stderr


def test_the_app_loads_no_weights_and_imports_no_transformers(tmp_path):
    """The whole app (context + every tab) on an endpoint, in a fresh process: ready at once, no model object."""
    code = textwrap.dedent(f"""
        import sys
        from alignui.config import AppConfig
        from alignui.context import AppContext
        from alignui.ui.app import build_ui, header_markdown
        config = AppConfig(storage={str(tmp_path / 's')!r}, model="endpoint:vllm", offline=True,
                           endpoints=("vllm=http://127.0.0.1:9/v1#Qwen/Qwen2.5-7B-Instruct",))
        ctx = AppContext.open(config, log=lambda m: None)
        handle = ctx.model
        build_ui(ctx)
        print(ctx.model_status.ready, handle.model is None, handle.tokenizer is None, handle.remote,
              "transformers" in sys.modules, "peft" in sys.modules)
        print(header_markdown(ctx).splitlines()[1])
        ctx.close()
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    facts, header = result.stdout.strip().splitlines()[-2:]
    assert facts == "True True True True False False"  # ready, no weights, no tokenizer; transformers never imported
    assert header.startswith("**Model:** endpoint:vllm (Qwen/Qwen2.5-7B-Instruct at http://127.0.0.1:9/v1; "
                             "no local weights)")


def test_generate_pair_with_defaults_uses_the_endpoint_and_records_it(client, server, openai_server, adapter_run):
    assert client.predict(api_name="/model_status")["ready"]
    assert client.predict(api_name="/models") == [SERVED, OTHER]  # no adapter, the served endpoint once
    job = client.submit("Tell me about the sea.", api_name="/generate_pair")
    text_a, text_b, pair_id = job.result(timeout=300)
    assert text_a and text_b and pair_id and len(job.outputs()) > 1  # streamed
    pair = server.ctx.store.get_comparison(pair_id)
    assert (pair.model_a, pair.model_b, pair.text_a, pair.text_b) == (SERVED, SERVED, text_a, text_b)
    for (ref, params), side in zip(stored(server.ctx.store, pair_id), "ab"):
        assert ref == SERVED and params["side"] == side and params["finish_reason"]
        assert params["generator"] == {"kind": "endpoint", "name": NAME, "base_url": openai_server.base_url,
                                       "model": openai_server.model}
    assert client.predict(pair_id, "a", api_name="/submit_vote").startswith("Saved: A is better")
    by_name = server.ctx.store.get_comparison(client.predict("Hi!", NAME, OTHER, api_name="/generate_pair")[2])
    assert (by_name.model_a, by_name.model_b) == (SERVED, OTHER)  # its registry name means the served model
    with pytest.raises(Exception, match=r"unknown generator 'dpo-local-only'.*adapters are not offered: the served "
                                        rf"model is {SERVED}, an endpoint with no local weights"):
        client.predict("Hi!", adapter_run.id, api_name="/generate_pair")


def test_an_arena_battle_has_the_endpoint_as_base_and_stays_blind(client, server, adapter_run):
    for _ in range(2):
        job = client.submit("Tell me about the moon.", api_name="/arena_battle")
        text_a, text_b, battle_id = job.result(timeout=300)
        outputs = json.dumps(job.outputs())
        assert len(job.outputs()) > 1 and not any(n in outputs for n in (NAME, OTHER, "quokka", "wombat"))
        saved = server.ctx.store.get_comparison(battle_id)
        assert {saved.model_a, saved.model_b} == {"base", OTHER} and (saved.text_a, saved.text_b) == (text_a, text_b)
        assert client.predict(battle_id, "b", api_name="/arena_vote") == f"{saved.model_a} vs {saved.model_b}"
    assert {m["model"] for m in client.predict(api_name="/leaderboard")["models"]} == {"base", OTHER}


def test_a_dead_endpoint_is_one_line_and_saves_nothing(storage):
    dead = free_port()  # nothing listens there
    config = AppConfig(storage=storage, model="endpoint:gone", port=free_port(), offline=True,
                       endpoints=(f"gone=http://127.0.0.1:{dead}/v1#some/model",))
    from gradio_client import Client

    with served(config) as app:
        client = Client(app.url, verbose=False)
        assert client.predict(api_name="/model_status")["ready"]  # no probe at start: the endpoint may wake later
        before = app.ctx.store.table_counts(TABLES)
        with pytest.raises(Exception) as err:
            client.predict("Hello?", api_name="/generate_pair")
        message = str(err.value)
        assert f"endpoint 'gone' (http://127.0.0.1:{dead}/v1, model some/model) could not be reached" in message
        assert "nothing was saved" in message and "Traceback" not in message and "\n" not in message.strip()
        assert app.ctx.store.table_counts(TABLES) == before


NEEDS = ("the served model is endpoint:vllm (Qwen/Qwen2.5-7B-Instruct); training needs local weights: set base_model "
         "to a hub id or path")
ENDPOINT_ENV = {"ALIGNUI_MODEL": "endpoint:vllm", "ALIGNUI_ENDPOINTS": "vllm=http://127.0.0.1:9/v1#Qwen/Qwen2.5-7B-Instruct"}


def test_train_without_a_base_model_says_which_local_base_it_needs(tmp_path):
    from alignui.training.synthetic import closer_snapshot

    storage = tmp_path / "s"
    closer_snapshot(storage, "closer", train_rows=8, test_rows=2)
    result = run_cli("train", "dpo", "--storage", str(storage), "--snapshot", "closer", env=ENDPOINT_ENV)
    assert result.returncode == 2 and result.stdout.strip() == "", result.stdout[-500:]
    assert result.stderr.strip().splitlines() == [f"error: pre-flight refused the run: {NEEDS} (the Train tab's Base "
                                                  "model, or --set base_model=...)"]
    assert not (storage / "runs").exists() or not any((storage / "runs").iterdir())  # no run was started
    explicit = run_cli("train", "dpo", "--storage", str(storage), "--snapshot", "closer", "--set",
                       "base_model=endpoint:vllm", env=ENDPOINT_ENV)
    assert explicit.returncode == 2 and NEEDS in explicit.stderr and len(explicit.stderr.strip().splitlines()) == 1


def test_the_train_tabs_preflight_and_start_refuse_an_endpoint_base(server):
    """The app (endpoints from flags, none in the environment) shows the served model as the base; pre-flight and
    start refuse it with the one line, and the runner's default for an empty base is the same endpoint."""
    from alignui.errors import UserError
    from alignui.team.identity import Identity
    from alignui.training.app.panel import preflight_from_form, start_from_form
    from alignui.training.synthetic import closer_snapshot

    closer_snapshot(server.ctx.layout.root, "closer", train_rows=8, test_rows=2)
    report = preflight_from_form(server.ctx.layout.root, "dpo", "closer", server.ctx.served_ref, {})
    assert "⛔ refused" in report and f"the served model is {SERVED}; training needs local weights" in report
    runner = server.ctx.job_runner()
    for base in (SERVED, ""):
        with pytest.raises(UserError, match=rf"^pre-flight refused the run: the served model is {SERVED}; training "
                                            "needs local weights: set base_model to a hub id or path"):
            start_from_form(runner, "dpo", "closer", base, {}, Identity("admin", "admin"))
    assert runner.active_run() is None and not runner.queued()


def test_what_needs_local_weights_refuses_in_one_line(storage, tmp_path):
    """Adapters and the local judge need the weights an endpoint-served app does not have."""
    from alignui.arena.judges import LocalLLMJudge
    from alignui.context import AppContext
    from alignui.errors import UserError
    from alignui.serving.adapters import adapter_server

    config = AppConfig(storage=storage, model="endpoint:far", offline=True, endpoints=("far=http://127.0.0.1:9/v1#m",))
    ctx = AppContext.open(config, log=lambda m: None)
    try:
        (tmp_path / "adapter").mkdir()
        run = ctx.store.upsert_run("dpo-1", method="dpo", status="done", adapter_path=str(tmp_path / "adapter"))
        with pytest.raises(UserError, match=r"^run dpo-1 cannot be served: adapters are not offered: the served model "
                                            "is endpoint:far, an endpoint with no local weights"):
            adapter_server(ctx.model).ensure(run)
        with pytest.raises(UserError, match=r"^the local judge .* needs local weights, and the served model is "
                                            "endpoint:far"):
            LocalLLMJudge(ctx.model)
    finally:
        ctx.close()


@pytest.mark.e2e
def test_the_browser_shows_the_endpoint_and_why_adapters_are_absent(server, page, adapter_run):
    from e2e.test_annotate import ready_pair, start_session
    from playwright.sync_api import expect

    start_session(page, server.url)
    assert "endpoint:ep-quokka-7r" in page.locator("#header").inner_text()
    page.locator("#generation-settings").get_by_text("Generation settings").click()
    # the accordion's body renders after the click: wait for it (an immediate read saw only its title, CI)
    expect(page.locator("#generation-settings")).to_contain_text("adapters are not offered", timeout=30_000)
    page.locator("#model-b input").click()
    page.get_by_role("option", name=f"{OTHER} (endpoint: ").wait_for()
    options = page.get_by_role("option").all_inner_texts()
    assert any(f"{SERVED} (served model)" in o for o in options) and not any("dpo-local-only" in o for o in options)
    page.keyboard.press("Escape")
    page.locator("#prompt textarea").fill("Tell me about the sea.")
    page.locator("#prompt textarea").press("Enter")
    pair = server.ctx.store.get_comparison(ready_pair(page))
    assert (pair.model_a, pair.model_b) == (SERVED, SERVED)
    page.get_by_role("tab", name="Arena").click()
    page.wait_for_function("() => document.querySelector('#arena-tab')?.innerText.includes('adapters are not offered')")
