"""The command line while the app runs (issue 12): export, stats and import on the data root the app holds are
handed to the app (real server, real subprocess CLI), with the same summary; the handoff endpoint refuses
anyone without the token (tried as an annotator would: gradio_client calls and the login page)."""

import json
import os
import stat
import subprocess
import sys
import threading

import httpx
import pytest
from gradio_client import Client

from alignui.db import Store
from alignui.team.handoff import HANDOFF_USER, handoff_path, read_handoff
from conftest import REPO, served

ACCOUNTS = (("ann", "ann-pw"), ("boss", "boss-pw"))


def cli(*args, storage):
    out = subprocess.run([sys.executable, "-m", "alignui", *args, "--storage", str(storage)], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    return out.returncode, out.stdout, out.stderr


def summary_of(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


class Voters:
    """`n` gradio_client clients, each on its own thread, generating a pair and voting on it until stopped;
    `acknowledged` counts the votes the app has answered (saved)."""

    def __init__(self, url: str, n: int = 10, auth=None):
        self.url, self.auth, self.stop = url, auth, threading.Event()
        self.lock, self.acknowledged, self.errors = threading.Lock(), 0, []
        self.threads = [threading.Thread(target=self._vote, args=(i,), daemon=True) for i in range(n)]

    def _vote(self, i: int) -> None:
        try:
            # no client-side timeout: on a loaded machine a queued call may wait long; a timeout would be ours
            client = Client(self.url, auth=self.auth, verbose=False, httpx_kwargs={"timeout": httpx.Timeout(900.0)})
            k = 0
            while not self.stop.is_set():
                _, _, pair_id = client.predict(f"voter {i} question {k}?", api_name="/generate_pair")
                client.predict(pair_id, "ab"[k % 2], api_name="/submit_vote")
                k += 1
                with self.lock:
                    self.acknowledged += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(exc))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def wait_for(self, votes: int) -> None:
        from conftest import wait_for

        wait_for(lambda: self.errors or self.acknowledged >= votes, f"{votes} acknowledged votes")
        assert not self.errors, self.errors

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=300)


def test_export_stats_and_import_run_in_the_app_while_ten_clients_vote(config, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"p{i}", "chosen": "good", "rejected": "bad"}) + "\n"
                             for i in range(3)))
    with served(config, rate_limit_per_minute=0) as app, Voters(app.url) as voters:
        voters.wait_for(5)
        before = voters.acknowledged
        code, out, err = cli("export", "--max-length", "0", storage=config.storage)
        assert code == 0, err
        exported = summary_of(out)
        assert exported["rows"] >= before and (config.storage / "snapshots" / exported["snapshot"]).is_dir()
        assert set(exported) >= {"snapshot", "path", "rows", "test_rows"}

        code, out, err = cli("stats", "--bootstrap", "10", storage=config.storage)
        assert code == 0, err
        assert set(summary_of(out)) >= {"models", "pairs"}

        code, out, err = cli("import", str(pairs), storage=config.storage)
        assert code == 0, err
        assert summary_of(out)["imported"] == 3
        voters.wait_for(before + 5)  # voting went on meanwhile
        assert app.ctx.store.query("SELECT count(*) FROM prompts WHERE source LIKE 'import:%'")[0][0] == 3
    assert not voters.errors, voters.errors


def test_the_handoff_file_is_the_owners_only_and_goes_with_the_app(config):
    with served(config) as app:
        path = handoff_path(config.storage)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        info = read_handoff(config.storage)
        assert info["url"] == app.url and info["pid"] == os.getpid() and len(info["token"]) >= 40
    assert not path.exists()


def test_with_a_login_page_the_cli_still_hands_over_and_an_annotator_is_refused(config, tmp_path):
    with served(config, users=ACCOUNTS, admins=frozenset({"boss"})) as app:
        code, out, err = cli("stats", "--bootstrap", "10", storage=config.storage)
        assert code == 0, err
        assert "models" in summary_of(out)

        ann = Client(app.url, auth=("ann", "ann-pw"), verbose=False)
        source = tmp_path / "evil.jsonl"
        source.write_text(json.dumps({"prompt": "x", "chosen": "y", "rejected": "z"}) + "\n")
        token = read_handoff(config.storage)["token"]
        for guess in ("", "guess", token[:-1] + ("A" if token[-1] != "A" else "B"), None):
            for command, options in (("export", "{}"), ("import", json.dumps({"source": str(source)}))):
                with pytest.raises(Exception, match="refused: this endpoint runs only for the command line"):
                    ann.predict(command, options, guess, api_name="/cli_handoff")
        assert not any((config.storage / "snapshots").iterdir())  # nothing ran
        assert app.ctx.store.query("SELECT count(*) FROM prompts")[0][0] == 0
        with pytest.raises(Exception):  # the CLI's login name with a guessed password
            Client(app.url, auth=(HANDOFF_USER, "guess"), verbose=False)


def test_a_lock_without_an_app_is_refused_in_one_line_naming_the_holder(layout):
    with Store(layout.db_path):
        code, out, err = cli("export", storage=layout.root)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and f"PID {os.getpid()}" not in err
    assert f"process {os.getpid()}" in err and ".alignui-admin.json is missing" in err


def test_a_stale_handoff_file_is_refused_in_one_line(layout):
    handoff_path(layout.root).write_text(json.dumps({"url": "http://127.0.0.1:9/", "token": "x", "pid": 1}))
    with Store(layout.db_path):
        code, out, err = cli("stats", storage=layout.root)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "did not answer" in err, err
