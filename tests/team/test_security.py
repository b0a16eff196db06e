"""Security at the edges: names that try to leave the data root, uploads over the size limit, odd names
in account settings. (HTML/JS shown as text in the browser: tests/e2e/test_security.py.)"""


import httpx
import pytest

from alignui.errors import UserError
from alignui.config import parse_accounts, parse_admins
from alignui.team.identity import clean_name, resolve
from alignui.paths import StorageLayout, UnsafeNameError, safe_child
from alignui.team.spaces import check_repo_id
from conftest import served

ESCAPES = ["..", ".", "../x", "../../etc/passwd", "a/b", "a\\b", "/etc/passwd", "x/../../y", "snap..1", "..\\..\\x",
           "a\0b", "", " ", "~root", "-rf", "%2e%2e", "x" * 200, "C:\\Windows"]


@pytest.mark.parametrize("name", ESCAPES)
def test_names_with_separators_or_dots_cannot_leave_the_data_root(tmp_path, name):
    layout = StorageLayout(tmp_path / "storage").ensure()
    for make in (layout.snapshot_dir, layout.run_dir, lambda n: safe_child(layout.models_dir, n)):
        with pytest.raises(UnsafeNameError, match="is not a valid name|would leave"):
            make(name)


def test_plain_names_stay_inside(tmp_path):
    layout = StorageLayout(tmp_path / "storage").ensure()
    for name in ("snap-2024.01_a", "run1", "A.b-c_d"):
        path = layout.snapshot_dir(name)
        assert path.parent == layout.snapshots_dir.resolve() and path.name == name
    (layout.snapshots_dir / "planted").symlink_to(tmp_path)  # a symlink planted inside cannot be used to step out
    with pytest.raises(UnsafeNameError, match="would leave"):
        layout.snapshot_dir("planted")


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "a\\b", "<script>", "x\0", "name;rm -rf", "é" * 65])
def test_annotator_names_with_path_or_markup_characters_are_refused(name):
    with pytest.raises(UserError, match="a name may hold"):
        clean_name(name)
    with pytest.raises(UserError):
        resolve(typed_name=name)
    with pytest.raises(UserError):
        parse_accounts(f"{name}:pw")
    if name.strip("\0"):
        with pytest.raises(UserError):
            parse_admins(name)


@pytest.mark.parametrize("repo", ["../x/y", "me/../../x", "/abs/path", "me/x/../y", "me\\x"])
def test_backup_repo_ids_cannot_point_anywhere_else(repo):
    with pytest.raises(UserError, match="is not a hub dataset id"):
        check_repo_id(repo)


@pytest.fixture
def small_upload_server(config):
    with served(config, max_upload_mb=1.0) as app:
        yield app


def test_uploads_over_the_size_limit_are_refused(small_upload_server):
    url = small_upload_server.url + "gradio_api/upload"
    small = httpx.post(url, files={"files": ("ok.jsonl", b'{"prompt": "hi"}\n' * 1000)}, timeout=60)
    assert small.status_code == 200, small.text
    big = httpx.post(url, files={"files": ("big.jsonl", b"x" * (1024 * 1024 + 1))}, timeout=60)
    assert big.status_code == 413 and "maximum allowed size" in big.text
