"""The model loads in the background: status with step and progress, a one-line refusal before it is ready,
one Hub probe per process, and nothing of ours left running after close."""

import threading
import time

import pytest

from alignui.config import AppConfig
from alignui.errors import UserError
from alignui.serving import hub as hub_mod
from alignui.serving.demo_model import BuildCancelled, DemoSpec, ensure_demo_model
from alignui.serving.hub import HubAccess, choose_model
from alignui.serving.loader import ModelLoader, ModelNotReady
from alignui.serving.loading import load_model


def our_threads() -> list[str]:
    """The loader's thread and the model's worker (other tests' job runners may still be winding down)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("alignui-model")]


def slowed(gate: threading.Event):
    """A load that reports two steps, then waits for `gate` (or cancel) before loading the real demo model."""
    def load(config, *, log, progress, cancel, hub):
        progress("building the demo model (once per machine): pre-training", 0.4)
        while not gate.is_set():
            if cancel.wait(0.05):
                raise BuildCancelled("cancelled")
        return load_model(config, log=log, progress=progress, cancel=cancel, hub=hub)
    return load


def test_status_and_refusal_while_loading_then_the_model(config):
    gate = threading.Event()
    loader = ModelLoader(config, log=lambda m: None, load=slowed(gate)).start()
    try:
        deadline = time.monotonic() + 30
        while "pre-training" not in loader.status().step and time.monotonic() < deadline:
            time.sleep(0.05)
        status = loader.status()
        assert not status.ready and status.fraction == 0.4 and status.percent == "40%"
        with pytest.raises(ModelNotReady, match=r"the model is still loading \(.*pre-training, 40%\)"):
            loader.handle()
        gate.set()
        handle = loader.wait(120)
        assert handle.is_demo and loader.status().ready and loader.status().as_dict()["progress"] == 1.0
    finally:
        loader.close()
    assert our_threads() == []


def test_close_while_loading_cancels_and_leaves_no_thread(config):
    loader = ModelLoader(config, log=lambda m: None, load=slowed(threading.Event())).start()
    time.sleep(0.3)
    started = time.monotonic()
    loader.close()
    assert time.monotonic() - started < 5 and our_threads() == []
    with pytest.raises(UserError, match="cancelled"):
        loader.handle()


def test_a_failed_load_is_reported_not_raised_at_start(config):
    def broken(config, **kwargs):
        raise OSError("disk on fire")

    loader = ModelLoader(config, log=lambda m: None, load=broken).start()
    with pytest.raises(UserError, match="could not be loaded: OSError: disk on fire"):
        loader.wait(30)
    loader.close()


def test_a_cancelled_demo_build_stops_its_child_and_leaves_nothing(tmp_path):
    """A real build (tiny spec) cancelled at its first progress line: BuildCancelled, no directory, no child."""
    import psutil

    cancel, steps = threading.Event(), []

    def progress(step, fraction=None):
        steps.append(step)
        cancel.set()

    with pytest.raises(BuildCancelled):
        ensure_demo_model(tmp_path / "demo", DemoSpec(train_steps=20), log=lambda m: None, progress=progress,
                          cancel=cancel)
    assert steps and not (tmp_path / "demo").exists()
    assert not [p for p in psutil.Process().children(recursive=True) if "demo_model" in " ".join(p.cmdline())]


def test_the_hub_is_probed_once_and_offline_means_no_probe(monkeypatch):
    calls = []
    monkeypatch.setattr(hub_mod, "probe_hub", lambda endpoint, timeout=2.0: calls.append(endpoint) or False)
    hub = HubAccess("http://hub.invalid")
    assert [hub.reachable() for _ in range(5)] == [False] * 5 and calls == ["http://hub.invalid"]
    assert not HubAccess("http://hub.invalid", offline=True).reachable() and len(calls) == 1


def test_an_unreachable_hub_is_detected_quickly():
    started = time.monotonic()
    assert not hub_mod.probe_hub("http://127.0.0.1:9", timeout=2.0)  # nothing listens on the discard port
    assert time.monotonic() - started < 3


def test_offline_and_not_cached_falls_back_to_demo_with_the_reason():
    choice = choose_model("someone/not-cached-anywhere", HubAccess(offline=True))
    assert choice.is_demo and "offline mode is on and it is not cached" in choice.notice


def test_the_demo_model_lives_in_the_per_machine_cache(tmp_path):
    from alignui.config import config_from

    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert config_from(None, env).demo_model_dir == tmp_path / "xdg" / "alignui" / "models" / "demo"
    env["ALIGNUI_CACHE_DIR"] = str(tmp_path / "mine")
    assert config_from(None, env).demo_model_dir == tmp_path / "mine" / "models" / "demo"
    assert AppConfig(cache_dir=tmp_path / "x").demo_model_dir == tmp_path / "x" / "models" / "demo"
