"""`train` with no base model given uses what `serve` would serve, by the same rule, and says so (issue 13):
offline with the default hub model not cached, that is the demo model, not a tokenizer error."""

from alignui.serving.hub import HubAccess, choose_model
from alignui.training.common import resolve_base_model


def test_offline_train_without_a_model_uses_the_demo_model_as_serve_does(monkeypatch, storage, demo_model_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ALIGNUI_MODEL", raising=False)
    logs: list[str] = []
    assert resolve_base_model("", storage, log=logs.append) == str(demo_model_dir.resolve())
    assert any("Could not load HuggingFaceTB/SmolLM2-135M-Instruct (offline mode is on and it is not cached)" in m
               and "what `serve` would serve here" in m for m in logs), logs
    assert choose_model("HuggingFaceTB/SmolLM2-135M-Instruct", HubAccess(offline=True)).is_demo  # serve's rule


def test_a_model_given_explicitly_is_used_as_given(monkeypatch, storage, demo_model_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_base_model(str(demo_model_dir), storage, log=lambda m: None) == str(demo_model_dir.resolve())
    assert resolve_base_model("someone/model", storage, log=lambda m: None) == "someone/model"
