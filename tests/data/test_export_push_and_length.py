"""Push to hub (no token / offline fail fast and keep the local snapshot; success with only the upload mocked)
and the truncation report with the demo model's real tokenizer."""

import json
from functools import partial

import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi
from transformers import AutoTokenizer

from alignui.data.hub_datasets import PushError
from alignui.db import NewGeneration
from alignui.data.export import ExportOptions, export_snapshot, push_export
from alignui.team.identity import Identity, PermissionDenied
from alignui.data.snapshot import verify_snapshot
from alignui.serving.truncation import truncation_report

ADMIN = Identity("boss", "admin", "login")


def add(store, prompt, a, b, verdict="a"):
    c = store.save_pair([{"role": "user", "content": prompt}], NewGeneration("base", a), NewGeneration("base", b))
    store.decide(c.id, verdict)


@pytest.fixture
def snapshot(store, layout):
    for i in range(5):
        add(store, f"Question number {i}?", f"A fine answer {i}.", f"Meh {i}.")
    return export_snapshot(store, layout, ExportOptions(test_size=0.2), ADMIN).ref


def test_push_without_a_token_says_so_and_keeps_the_snapshot(snapshot, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(PushError, match=r"no Hugging Face token: set HF_TOKEN.*the local snapshot "
                                        rf"{snapshot.id} is saved at {snapshot.path}"):
        push_export(snapshot, "me/prefs", ADMIN)
    assert verify_snapshot(snapshot)


def test_push_while_offline_fails_fast_and_keeps_the_snapshot(snapshot, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PushError, match="offline mode is on.*is saved at"):
        push_export(snapshot, "me/prefs", ADMIN, token="hf_not_a_real_token")
    with pytest.raises(PushError, match="not a hub dataset repo id"):
        push_export(snapshot, "no slash", ADMIN, token="hf_x")
    with pytest.raises(PermissionDenied):
        push_export(snapshot, "me/prefs", Identity("ann", "annotator"), token="hf_x")
    assert verify_snapshot(snapshot)


def test_push_success_uploads_parquet_card_and_manifest_privately(snapshot, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = {}

    def create_repo(self, repo_id, **kw):
        calls["create"] = (repo_id, kw)

    def upload_folder(self, *, repo_id, folder_path, **kw):  # the upload itself: inspect what would be sent
        from pathlib import Path

        folder = Path(folder_path)
        calls["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        calls["rows"] = {p.name.split("-")[0]: pq.read_table(p).num_rows for p in (folder / "data").iterdir()}
        calls["card"] = (folder / "README.md").read_text()
        calls["manifest"] = json.loads((folder / "manifest.json").read_text())
        calls["token"] = self.token

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    url = push_export(snapshot, "me/prefs", ADMIN, token="hf_test")
    assert url == "https://huggingface.co/datasets/me/prefs"
    assert calls["create"] == ("me/prefs", {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert calls["files"] == ["README.md", "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet",
                              "manifest.json"]
    assert calls["rows"] == {"train": 4, "test": 1} and calls["token"] == "hf_test"
    assert "path: data/train-*" in calls["card"] and 'load_dataset("me/prefs")' in calls["card"]
    assert calls["manifest"]["sha256"] == snapshot.sha256


@pytest.fixture(scope="module")
def tokenizer(demo_model_dir):
    return AutoTokenizer.from_pretrained(str(demo_model_dir))


def pair_length(tok, prompt, a, b):
    rendered = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                       add_generation_prompt=True)
    n = lambda text: len(tok(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    return n(rendered) + max(n(a), n(b)) + 1


def test_truncation_report_counts_pairs_over_max_length(store, layout, tokenizer):
    short = ("Hi?", "Hello.", "Yo.")
    long = ("Tell me everything about the sea. " * 4, "The sea is large and deep and blue. " * 12, "No.")
    add(store, *short)
    add(store, *long)
    n_short, n_long = pair_length(tokenizer, *short), pair_length(tokenizer, *long)
    assert n_short < n_long
    counter = partial(truncation_report, tokenizer)
    for max_length, over in ((n_short - 1, 2), (n_short, 1), (n_long - 1, 1), (n_long, 0)):
        m = export_snapshot(store, layout, ExportOptions(max_length=max_length), ADMIN, count_tokens=counter).manifest
        assert m["truncation"]["over"] == over and m["truncation"]["longest"] == n_long
    card = (layout.snapshots_dir / m["id"] / "README.md").read_text()
    assert "**0** of 2 pairs exceed max_length" in card
    m = export_snapshot(store, layout, ExportOptions(), ADMIN, tokenizer_note="no tokenizer here").manifest
    assert m["truncation"] == {"max_length": 1024, "skipped": "no tokenizer here"}


def test_truncation_without_a_chat_template(tokenizer):
    import copy

    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    report = truncation_report(plain, [[{"role": "user", "content": "abc"}]], ["de"], ["f"], 3)
    n = lambda t: len(plain(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    assert report["longest"] == n("abc\n") + n("de") + 1 and report["over"] == int(report["longest"] > 3)
