import argparse

import pytest

from alignui.config import DEFAULT_MODEL, AppConfig, ConfigError, add_app_arguments, config_from


def parse(*argv):
    p = argparse.ArgumentParser()
    add_app_arguments(p)
    return p.parse_args(list(argv))


def test_defaults_without_flags_or_env():
    cfg = config_from(parse(), env={})
    assert cfg.model == DEFAULT_MODEL and cfg.port == 7860 and cfg.host == "127.0.0.1"
    assert str(cfg.storage) == "storage" and cfg.device == "auto" and not cfg.offline


def test_flag_beats_environment_beats_default(tmp_path):
    env = {"ALIGNUI_STORAGE": str(tmp_path / "env"), "ALIGNUI_MODEL": "env/model", "GRADIO_SERVER_PORT": "9000",
           "HF_HUB_OFFLINE": "1"}
    assert config_from(parse(), env=env).storage == tmp_path / "env"
    assert config_from(parse(), env=env).port == 9000 and config_from(parse(), env=env).offline
    cfg = config_from(parse("--storage", str(tmp_path / "flag"), "--model", "demo", "--port", "7000"), env=env)
    assert (cfg.storage, cfg.model, cfg.port) == (tmp_path / "flag", "demo", 7000)


def test_space_defaults_to_persistent_data_and_all_interfaces(monkeypatch):
    cfg = config_from(parse(), env={"SPACE_ID": "me/alignui"})
    assert cfg.host == "0.0.0.0"
    # /data does not exist here: the Space is not persistent and the UI must warn
    assert not cfg.persistent


@pytest.mark.parametrize("kwargs, fragment", [
    ({"port": 0}, "port must be"),
    ({"port": 70000}, "port must be"),
    ({"device": "tpu"}, "device must be one of"),
    ({"model": "  "}, "model is empty"),
    ({"host": ""}, "host is empty"),
])
def test_bad_values_are_refused_with_advice(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        AppConfig(**kwargs)


def test_non_numeric_port_says_what_to_pass():
    with pytest.raises(ConfigError, match="--port 7860"):
        config_from(parse("--port", "http"), env={})


def test_describe_is_one_line():
    text = AppConfig(model="demo").describe()
    assert "\n" not in text and "model=demo" in text and "storage=storage" in text
