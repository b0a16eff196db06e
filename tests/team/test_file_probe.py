"""The import panel's "Read columns" and "Import" as a file probe, tried as an attacker would (raw event calls
of a signed-in annotator, then of an admin): admin only, and confined to uploads and ALIGNUI_IMPORT_DIRS."""

import json

import pytest

from alignui.config import ConfigError, config_from
from conftest import served
from team.test_roles import ACCOUNTS, ADMINS, call_event, logged_in_http, refusal
from team.test_privacy import fn_named

SECRET_HEADER = "secret_column_xyz"


@pytest.fixture
def probe_server(config, tmp_path):
    """boss (admin), ann and bob; the web import may read tmp/imports only; tmp/private holds a 'secret' file."""

    (tmp_path / "imports").mkdir()
    (tmp_path / "imports" / "ok.csv").write_text("prompt,chosen,rejected\nQ,A,B\n")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "secret.csv").write_text(f"{SECRET_HEADER},b\n1,2\n")
    (tmp_path / "imports" / "link.csv").symlink_to(tmp_path / "private" / "secret.csv")
    with served(config, users=ACCOUNTS, admins=ADMINS, import_dirs=(tmp_path / "imports",)) as app:
        yield app


def read_columns(http, server, typed, upload=None):
    return call_event(http, fn_named(server, "import-preview", "ui_preview"), [upload, typed, "", ""])


def test_read_columns_is_admin_only_and_confined_to_the_import_dirs(probe_server, tmp_path):
    secret = tmp_path / "private" / "secret.csv"
    ann = logged_in_http(probe_server, "ann")
    for typed in (str(secret), str(tmp_path / "imports" / "ok.csv")):
        answer = read_columns(ann, probe_server, typed)
        assert "ann may not import" in refusal(answer), answer

    boss = logged_in_http(probe_server, "boss")
    outside = [str(secret), str(tmp_path / "private" / "absent.csv"), str(tmp_path / "imports" / ".." /
               "private" / "secret.csv"), str(tmp_path / "imports" / "link.csv"), "/etc", "~/.bashrc"]
    errors = []
    for typed in outside:
        answer = read_columns(boss, probe_server, typed)
        assert refusal(answer) and SECRET_HEADER not in json.dumps(answer), (typed, answer)
        error = refusal(answer)
        assert "is not inside a folder the web app may import from" in error
        errors.append(error[error.index(" is not inside"):])  # what follows the quoted path
    assert errors[0] == errors[1], "a file that exists and one that does not must read the same"

    faked = {"path": str(secret), "orig_name": "secret.csv", "meta": {"_type": "gradio.FileData"}}
    answer = read_columns(boss, probe_server, "", upload=faked)  # an 'upload' that points at a server file
    assert refusal(answer) and SECRET_HEADER not in json.dumps(answer), answer

    inside = read_columns(boss, probe_server, str(tmp_path / "imports" / "ok.csv"))
    assert inside["success"] is True and "prompt, chosen, rejected" in json.dumps(inside)


def test_an_import_of_a_path_outside_the_import_dirs_writes_nothing(probe_server, tmp_path):
    boss = logged_in_http(probe_server, "boss")
    secret = str(tmp_path / "private" / "secret.csv")
    answer = call_event(boss, fn_named(probe_server, "import-run", "ui_import"),
                        [None, secret, "auto", "", "a", "b", "b", "boss"])
    assert "ALIGNUI_IMPORT_DIRS" in refusal(answer), answer
    assert probe_server.ctx.store.table_counts()["comparisons"] == 0


def test_the_import_dirs_setting_comes_from_the_environment(tmp_path):
    config = config_from(env={"ALIGNUI_IMPORT_DIRS": f"{tmp_path}:{tmp_path}/../{tmp_path.name}"})
    assert config.import_dirs == (tmp_path.resolve(), tmp_path.resolve())
    assert config_from(env={}).import_dirs == ()
    with pytest.raises(ConfigError, match="ALIGNUI_IMPORT_DIRS lists .* which is not a directory"):
        config_from(env={"ALIGNUI_IMPORT_DIRS": str(tmp_path / "missing")})
