"""Hosting on Hugging Face Spaces: persistence check, token, backups (only the upload is faked; the
unreachable hub is real), and the README front matter against the Spaces config reference."""

import re
from dataclasses import replace
import socket
import unicodedata
from pathlib import Path

import gradio
import pytest
import yaml

from alignui.config import AppConfig
from alignui.db import NewGeneration, Store
from alignui.errors import UserError
from alignui.team.backup import backup_now, start_periodic_backup
from alignui.team.backup_remote import HubRemote
from alignui.team.spaces import check_repo_id, require_token, storage_status
from conftest import REPO

OVERLAY_ROOT = [("/", "overlay"), ("/proc", "proc"), ("/tmp", "tmpfs")]


def test_off_a_space_the_data_root_is_assumed_persistent(tmp_path):
    status = storage_status(AppConfig(storage=tmp_path), OVERLAY_ROOT)
    assert status.persistent and not status.on_space and status.message is None


@pytest.mark.parametrize("root, mounts, persistent", [
    ("/home/user/app/storage", OVERLAY_ROOT, False),  # the container's own disk
    ("/tmp/alignui", OVERLAY_ROOT, False),  # a RAM disk
    ("/data/alignui", OVERLAY_ROOT + [("/data", "ext4")], True),  # persistent storage
    ("/mnt/bucket/alignui", OVERLAY_ROOT + [("/mnt/bucket", "fuse.hf-mount")], True),  # a storage bucket
    ("/data/alignui", OVERLAY_ROOT, False),  # a plain directory called /data is not a volume
])
def test_on_a_space_only_a_mounted_volume_counts_as_persistent(root, mounts, persistent):
    status = storage_status(AppConfig(storage=Path(root), space_id="me/alignui"), mounts)
    assert status.on_space and status.persistent is persistent
    if not persistent:
        assert "lost when the Space restarts" in status.message and "Admin tab" in status.message


def test_pushing_without_a_token_says_where_to_put_one():
    with pytest.raises(UserError, match="Variables and secrets"):
        require_token(AppConfig(space_id="me/alignui"))
    with pytest.raises(UserError, match="export HF_TOKEN"):
        require_token(AppConfig())
    assert require_token(AppConfig(hf_token="hf_x")) == "hf_x"


@pytest.mark.parametrize("token,extra", [(None, "and a token with write access (set HF_TOKEN)"), ("hf_x", None)])
def test_a_backup_with_an_empty_repo_names_the_missing_repo(store, tmp_path, token, extra):
    """Back up now with an empty repo box and no ALIGNUI_BACKUP_REPO: the message names the repo setting (it
    used to complain only about HF_TOKEN), and the token too where that is missing as well."""
    from alignui.team import admin
    from alignui.team.identity import Identity

    config = AppConfig(storage=tmp_path, hf_token=token)
    with pytest.raises(UserError, match="ALIGNUI_BACKUP_REPO") as refused:
        admin.backup(store, config, Identity("boss", role="admin", source="login"), "  ")
    message = str(refused.value)
    assert "my-name/alignui-backup" in message and (extra in message if extra else "HF_TOKEN" not in message)


@pytest.mark.parametrize("bad", ["", "alignui", "me/alignui/extra", "../me/x", "me/..", "me/a b"])
def test_bad_repo_ids_are_refused(bad):
    with pytest.raises(UserError, match="is not a hub dataset id"):
        check_repo_id(bad)


class FakeHub:
    """A real HfApi whose two network calls (create the repo, send a commit) are recorded instead of sent:
    which files go up is still decided by huggingface_hub's own upload_folder / CommitScheduler code."""

    def __new__(cls):
        from huggingface_hub import CommitInfo, HfApi, RepoUrl

        class Recorder(HfApi):
            def __init__(self):
                super().__init__(token="hf_fake")
                self.calls = []

            def create_repo(self, repo_id, **kwargs):
                self.calls.append(("create_repo", repo_id, kwargs))
                return RepoUrl(f"https://huggingface.co/datasets/{repo_id}")

            def create_commit(self, repo_id, operations, **kwargs):
                files = sorted(op.path_in_repo for op in operations)
                self.calls.append(("create_commit", repo_id, {**kwargs, "files": files}))
                url = f"https://huggingface.co/datasets/{repo_id}/commit/{'0' * 40}"
                return CommitInfo(commit_url=url, commit_message=kwargs.get("commit_message", ""),
                                  commit_description="", oid="0" * 40)

        return Recorder()


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "storage"
    (root / "snapshots" / "snap1").mkdir(parents=True)
    (root / "snapshots" / "snap1" / "manifest.json").write_text("{}")
    (root / "runs" / "r1").mkdir(parents=True)
    (root / "runs" / "r1" / "big.bin").write_bytes(b"x" * 10)
    with Store(root / "alignui.duckdb") as store:
        pair = store.save_pair([{"role": "user", "content": "hi"}], NewGeneration("base", "a"),
                               NewGeneration("base", "b"), annotator="ann")
        store.decide(pair.id, "a")
        yield root, store


def test_a_backup_uploads_snapshots_and_a_database_copy_to_a_private_dataset(data_root):
    root, store = data_root
    hub = FakeHub()
    result = backup_now(store, root, HubRemote("me/alignui-backup", "hf_x", api=hub))
    (_, repo, create), (_, _, upload) = hub.calls
    assert repo == "me/alignui-backup" and create == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert upload["repo_type"] == "dataset" and "snapshots/snap1/manifest.json" in upload["files"]
    assert result.commit_url.startswith("https://huggingface.co/datasets/me/alignui-backup/commit/")
    assert "backup/database/comparisons.parquet" in upload["files"]
    assert "runs/r1/big.bin" not in upload["files"]  # a run's checkpoints and other files stay local
    assert result.files == len(upload["files"]) and "me/alignui-backup" in result.describe()
    import pandas as pd

    saved = pd.read_parquet(root / "backup" / "database" / "comparisons.parquet")
    assert list(saved["verdict"]) == ["a"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def test_an_unreachable_hub_gives_a_clear_error_and_changes_nothing(data_root, monkeypatch):
    from huggingface_hub import HfApi, constants

    root, store = data_root
    before = sorted(p.relative_to(root) for p in root.rglob("*") if "backup" not in p.parts)
    # offline mode (as here: HF_HUB_OFFLINE=1) ...
    with pytest.raises(UserError, match="could not back up to me/b: .*nothing under the data root was changed"):
        backup_now(store, root, HubRemote("me/b", "hf_x"))
    # ... and a hub that does not answer at all
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    api = HfApi(endpoint=f"http://127.0.0.1:{closed_port()}", token="hf_x")
    with pytest.raises(UserError, match="could not back up to me/b"):
        backup_now(store, root, HubRemote("me/b", "hf_x", api=api))
    assert sorted(p.relative_to(root) for p in root.rglob("*") if "backup" not in p.parts) == before
    assert store.vote_counts()["a"] == 1


def test_periodic_backup_is_off_unless_configured_and_never_stops_the_app(data_root):
    root, store = data_root
    assert start_periodic_backup(AppConfig(storage=root), store) is None
    lines = []
    config = AppConfig(storage=root, backup_repo="me/b", backup_every_minutes=5, hf_token="hf_secret")
    assert start_periodic_backup(replace(config, hf_token=None), store, log=lines.append) is None  # no token
    assert len(lines) == 1 and "periodic backup is OFF" in lines[0] and "HF_TOKEN" in lines[0]
    failing = start_periodic_backup(config, store, log=lines.append, poll_s=0.05)  # the hub is unreachable here
    with pytest.raises(UserError, match="could not back up to me/b"):
        failing.trigger().result(timeout=60)
    failing.stop()
    assert "backup to me/b failed" in lines[-1] and not any("hf_secret" in line for line in lines)
    hub = FakeHub()
    scheduler = start_periodic_backup(config, store, remote=HubRemote("me/b", "hf_secret", api=hub))
    try:
        scheduler.trigger().result(timeout=60)
        (_, _, create), *commits = hub.calls
        assert create["private"] is True and create["repo_type"] == "dataset"
        uploaded = {f for _, _, c in commits for f in c["files"]}
        assert {"snapshots/snap1/manifest.json", "backup/database/comparisons.parquet"} <= uploaded
        assert not any(f.startswith(("runs/r1/big.bin", "alignui.duckdb")) for f in uploaded)
    finally:
        scheduler.stop()


# -- README front matter -----------------------------------------------------------------------------
# From https://huggingface.co/docs/hub/spaces-config-reference (the keys this app may use and their values).
SPACES_KEYS = {"title", "emoji", "colorFrom", "colorTo", "sdk", "python_version", "sdk_version", "suggested_hardware",
               "suggested_storage", "app_file", "app_port", "base_path", "fullWidth", "header", "short_description",
               "models", "datasets", "tags", "thumbnail", "pinned", "hf_oauth", "hf_oauth_scopes",
               "hf_oauth_expiration_minutes", "hf_oauth_authorized_org", "disable_embedding",
               "startup_duration_timeout",
               "custom_headers", "preload_from_hub", "license"}
COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
HARDWARE = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4", "l40sx8",
            "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large", "a100x4", "a100x8",
            "v5e-1x1", "v5e-2x2", "v5e-2x4"}
OAUTH_SCOPES = {"openid", "profile", "email", "read-repos", "write-repos", "manage-repos", "inference-api",
                "read-billing", "gated-repos"}


def front_matter() -> dict:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must start with a --- YAML block --- (the Space's configuration)"
    return yaml.safe_load(match.group(1))


def test_readme_front_matter_is_a_valid_spaces_config():
    meta = front_matter()
    assert set(meta) <= SPACES_KEYS, f"keys the Spaces reference does not know: {set(meta) - SPACES_KEYS}"
    assert isinstance(meta["title"], str) and 0 < len(meta["title"]) <= 100
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and (REPO / meta["app_file"]).is_file()
    assert meta["sdk_version"] == gradio.__version__  # the version the tests ran with
    assert f"gradio[oauth]=={meta['sdk_version']}" in (REPO / "requirements.txt").read_text()
    assert re.fullmatch(r"3\.\d+(\.\d+)?", str(meta["python_version"]))
    assert meta["colorFrom"] in COLORS and meta["colorTo"] in COLORS
    assert meta["hf_oauth"] is True and meta["suggested_hardware"] in HARDWARE
    assert set(meta.get("hf_oauth_scopes", [])) <= OAUTH_SCOPES
    assert 1 <= meta.get("hf_oauth_expiration_minutes", 480) <= 43200
    assert len(meta.get("short_description", "")) <= 60
    assert all(unicodedata.category(ch) in ("So", "Sk", "Mn", "Cf") for ch in meta["emoji"]), "emoji only"
    assert meta.get("suggested_storage", "small") in {"small", "medium", "large"}


def test_every_tab_warns_loudly_when_a_space_keeps_data_on_its_temporary_disk(ctx, monkeypatch):
    from dataclasses import replace

    from alignui.ui.app import header_markdown

    assert "not persistent" not in header_markdown(ctx)  # a local install: no warning
    ctx.config = replace(ctx.config, space_id="me/alignui")
    monkeypatch.setattr("alignui.team.spaces.read_mounts", lambda text=None: [("/", "overlay")])
    header = header_markdown(ctx)
    assert "⚠️ **Data is not persistent.**" in header and "lost when the Space restarts" in header
