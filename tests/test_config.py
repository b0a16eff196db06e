import argparse

import pytest

from alignui.cli.flags import add_app_arguments
from alignui.config import DEFAULT_MODEL, AppConfig, ConfigError, config_from


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


# -- endpoints (issue 14) ----------------------------------------------------------------------------------
def test_endpoints_come_from_flags_else_the_environment_and_the_key_from_its_chain():
    env = {"ALIGNUI_ENDPOINTS": "a=http://h:1/v1#m1, b=https://x.example/v1#org/m2", "HF_TOKEN": "hf_x",
           "OPENAI_API_KEY": "sk-o"}
    cfg = config_from(parse(), env=env)
    assert [(e.name, e.base_url, e.model) for e in cfg.endpoints] == [("a", "http://h:1/v1", "m1"),
                                                                      ("b", "https://x.example/v1", "org/m2")]
    assert cfg.endpoint_api_key == "hf_x"
    assert config_from(parse(), env={**env, "ALIGNUI_ENDPOINT_API_KEY": "k1"}).endpoint_api_key == "k1"
    assert config_from(parse(), env={"OPENAI_API_KEY": "sk-o"}).endpoint_api_key == "sk-o"
    flagged = config_from(parse("--endpoint", "c=http://h:2/v1#m#3", "--endpoint", "d=http://h:3#m"), env=env)
    assert [(e.name, e.model) for e in flagged.endpoints] == [("c", "3"), ("d", "m")]  # the last '#' splits


@pytest.mark.parametrize("spec, fragment", [
    ("nourl", "is not NAME=BASE_URL#MODEL"),
    ("a=http://h:1/v1", "is not NAME=BASE_URL#MODEL"),
    ("a b=http://h/v1#m", "endpoint name"),
    ("base=http://h/v1#m", "endpoint name"),
    ("a=ftp://h/v1#m", "is not an http"),
    ("a=http://user:sk-secret@h/v1#m", "no credentials"),
])
def test_malformed_endpoints_are_one_line_errors(spec, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        config_from(parse("--endpoint", spec), env={})
    assert "\n" not in str(err.value) and "sk-secret" not in str(err.value)


def test_endpoint_names_are_unique():
    with pytest.raises(ConfigError, match="unique"):
        config_from(parse(), env={"ALIGNUI_ENDPOINTS": "a=http://h/v1#m,a=http://g/v1#m"})


def test_the_endpoint_key_is_never_described():
    cfg = config_from(parse("--endpoint", "a=http://h:1/v1#m"), env={"ALIGNUI_ENDPOINT_API_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in cfg.describe() + repr(cfg) and "endpoints=[a=http://h:1/v1#m]" in cfg.describe()


def test_an_endpoint_as_the_served_model_from_flags_or_environment():
    cfg = config_from(parse("--model", "endpoint:a", "--endpoint", "a=http://h:1/v1#m"), env={})
    assert cfg.model == "endpoint:a" and str(cfg.served_endpoint) == "a=http://h:1/v1#m"
    env = config_from(parse(), env={"ALIGNUI_MODEL": "endpoint:b", "ALIGNUI_ENDPOINTS": "a=http://h/v1#m,b=http://g/v1#n"})
    assert env.served_endpoint.name == "b" and env.served_endpoint.model == "n"
    assert config_from(parse(), env={}).served_endpoint is None
    with pytest.raises(ConfigError, match=r"^--model 'endpoint:c' names no registered endpoint \(registered: a\)"):
        config_from(parse("--model", "endpoint:c", "--endpoint", "a=http://h:1/v1#m"), env={})


def test_a_malformed_accounts_setting_cannot_fail_a_training_job_or_an_export():
    """Jobs read the model settings only (config_from(team=False)); the app itself still refuses the setting."""
    import pytest

    from alignui.config import ConfigError, config_from

    env = {"ALIGNUI_USERS": "ann", "ALIGNUI_MODEL": "demo"}
    assert config_from(None, env, team=False).model == "demo"
    with pytest.raises(ConfigError, match="ALIGNUI_USERS"):
        config_from(None, env)


def test_cpu_threads_come_from_the_flag_else_the_environment_and_bad_values_say_what_to_pass():
    assert config_from(parse(), env={}).cpu_threads == 0  # automatic
    assert config_from(parse(), env={"ALIGNUI_CPU_THREADS": "3"}).cpu_threads == 3
    assert config_from(parse("--cpu-threads", "2"), env={"ALIGNUI_CPU_THREADS": "3"}).cpu_threads == 2
    for bad in ("two", "1.5"):
        with pytest.raises(ConfigError, match=r"^cpu threads \(--cpu-threads, ALIGNUI_CPU_THREADS\) must be a whole "
                                              r"number, got .*--cpu-threads 2"):
            config_from(parse("--cpu-threads", bad), env={})
    with pytest.raises(ConfigError, match="got 'x'"):
        config_from(parse(), env={"ALIGNUI_CPU_THREADS": "x"})
    with pytest.raises(ConfigError, match=r"^cpu_threads must be a whole number >= 0 \(0: automatic\), got -1"):
        config_from(parse("--cpu-threads", "-1"), env={})


def test_decode_process_is_off_unless_the_flag_or_the_environment_asks_and_its_child_gets_no_secrets():
    from alignui.serving.decode_process import _no_secrets

    assert config_from(parse(), env={}).decode_process is False
    assert config_from(parse(), env={"ALIGNUI_DECODE_PROCESS": "1"}).decode_process is True
    assert config_from(parse("--decode-process"), env={}).decode_process is True
    secret = AppConfig(users=(("ann", "pw1"),), hf_token="hf_secret", endpoint_api_key="sk-secret")
    assert _no_secrets(secret) == {"users": (), "hf_token": None, "endpoint_api_key": None}
