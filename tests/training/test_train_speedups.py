"""Memory/speed settings from the ecosystem and vLLM rollouts, without training: the settings validate, reach the
installed trl's config objects (built, not run), and pre-flight refuses what this machine cannot run (no vllm,
no liger-kernel, no CUDA here) with one line saying what to do."""

import dataclasses
import importlib.util
import types

import pytest

from alignui.runs import RunDir
from alignui.training import speedups, vllm_rollouts
from alignui.training.common import Setup, training_arguments
from alignui.training.config import CONFIGS_DIR, TrainConfigError, build_config
from alignui.training.dpo import DPOTrainConfig, dpo_arguments
from alignui.training.kto import KTOTrainConfig
from alignui.training.preflight import PreflightReport, check
from alignui.training.reference_free import ORPOTrainConfig, SimPOTrainConfig
from alignui.training.rlhf import RLHFTrainConfig, rl_arguments
from alignui.training.synthetic import closer_snapshot


def cpu_setup(checkpointing: bool = False) -> Setup:
    import torch

    return Setup(device="cpu", dtype=torch.float32, quantized=False, gradient_checkpointing=checkpointing)


CUDA = types.SimpleNamespace(device="cuda", gradient_checkpointing=True)


def base_kwargs(config, tmp_path):
    (tmp_path / "run").mkdir(exist_ok=True)
    return training_arguments(config, RunDir(tmp_path / "run"), cpu_setup(), has_eval=False)


def trl_fields(path: str) -> set[str]:
    module, name = path.split(":")
    return {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), name))}


def test_the_names_alignui_hands_to_trl_exist_on_the_installed_trl_configs():
    for path in ("trl:DPOConfig", "trl:KTOConfig", "trl.experimental.orpo:ORPOConfig",
                 "trl.experimental.cpo:CPOConfig"):
        assert "use_liger_kernel" in trl_fields(path), path
    for path in ("trl:DPOConfig", "trl:KTOConfig"):
        assert "precompute_ref_log_probs" in trl_fields(path), path
    for path in ("trl:RLOOConfig", "trl:GRPOConfig"):
        assert {"use_vllm", "vllm_mode", "vllm_gpu_memory_utilization", "vllm_server_host",
                "vllm_server_port"} <= trl_fields(path), path


# -- vLLM rollouts ---------------------------------------------------------------------------------------------------
def test_vllm_settings_validate():
    config = RLHFTrainConfig.from_mapping({"use_vllm": "true", "vllm_mode": "server", "vllm_server_port": "8001"})
    assert config.use_vllm and config.vllm_mode == "server" and config.vllm_server_port == 8001
    bad = {"vllm_mode": ("gpu", "vllm_mode must be one of colocate, server"),
           "vllm_gpu_memory_utilization": ("1.5", r"share of the GPU's memory, in \(0, 1\)"),
           "vllm_server_port": ("0", "must be a port number"),
           "vllm_server_host": (" ", "vllm_server_host is empty")}
    for key, (value, message) in bad.items():
        with pytest.raises(TrainConfigError, match=message):
            RLHFTrainConfig.from_mapping({"use_vllm": "true", key: value})
    with pytest.raises(TrainConfigError, match="use_vllm works with algorithm=rloo or grpo"):
        RLHFTrainConfig(use_vllm=True).check_vllm("ppo")  # an algorithm whose trainer is not TRL's RLOO/GRPO
    assert "requirements-vllm.txt" in RLHFTrainConfig.help_of("use_vllm")
    with pytest.raises(TrainConfigError, match="unknown setting 'use_vllm'"):
        DPOTrainConfig.from_mapping({"use_vllm": "true"})  # only the RL stage generates


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_vllm_settings_reach_the_trl_config(algorithm, tmp_path):
    colocate = RLHFTrainConfig(algorithm=algorithm, use_vllm=True, vllm_gpu_memory_utilization=0.45)
    args = rl_arguments(colocate, base_kwargs(colocate, tmp_path), 1)
    assert type(args).__name__ == {"rloo": "RLOOConfig", "grpo": "GRPOConfig"}[algorithm]
    assert args.use_vllm is True and args.vllm_mode == "colocate" and args.vllm_gpu_memory_utilization == 0.45
    server = RLHFTrainConfig(algorithm=algorithm, use_vllm=True, vllm_mode="server", vllm_server_host="10.0.0.2",
                             vllm_server_port=8011)
    args = rl_arguments(server, base_kwargs(server, tmp_path), 1)
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_host, args.vllm_server_port) == (
        True, "server", "10.0.0.2", 8011)
    off = rl_arguments(RLHFTrainConfig(algorithm=algorithm), base_kwargs(colocate, tmp_path), 1)
    assert off.use_vllm is False and vllm_rollouts.trl_arguments(RLHFTrainConfig()) == {}


def test_preflight_refuses_vllm_here_with_the_install_line(storage):
    assert importlib.util.find_spec("vllm") is None, "this test is for a machine without vllm (as CI is)"
    ref = closer_snapshot(storage, "s", train_rows=12, test_rows=2)
    report, _, _ = check(RLHFTrainConfig.from_mapping({"base_model": "demo", "use_vllm": "true"}), storage, ref)
    assert not report.ok
    assert ("use_vllm needs vLLM, which is not installed here: pip install -r requirements-vllm.txt (or pip "
            "install 'alignui[vllm]') in a separate environment: vLLM pins its own CUDA torch, so install it where "
            "torch matches it") in report.refusals
    assert any(r.startswith("use_vllm needs a CUDA GPU") and r.endswith("set use_vllm=false")
               for r in report.refusals)
    assert all("\n" not in r for r in report.refusals)
    assert "vLLM rollouts (colocate)" in report.markdown()
    plain, _, _ = check(RLHFTrainConfig.from_mapping({"base_model": "demo"}), storage, ref)
    assert not any("vllm" in r.lower() for r in plain.refusals + plain.tradeoffs)


def test_preflight_lets_vllm_run_where_it_is_installed_on_cuda(monkeypatch):
    monkeypatch.setattr(vllm_rollouts, "installed", lambda: True)
    report = PreflightReport(rows=10)
    vllm_rollouts.check(report, RLHFTrainConfig(use_vllm=True, vllm_mode="server"), CUDA)
    assert report.ok and "trl vllm-serve` at 127.0.0.1:8000" in report.tradeoffs[0]


# -- Liger, precomputed reference log-probs, gradient checkpointing -----------------------------------------------
METHODS = {"dpo": DPOTrainConfig, "kto": KTOTrainConfig, "orpo": ORPOTrainConfig, "simpo": SimPOTrainConfig}


def trl_config(name, config, tmp_path):
    """The TRL config object the method's job builds (the same functions build_trainer calls)."""
    from alignui.training.methods import load_trl
    from alignui.training.reference_free import CPO_ARGS, ORPO_ARGS

    kwargs = base_kwargs(config, tmp_path)
    if name == "dpo":
        return dpo_arguments(config, kwargs)
    if name == "kto":
        return load_trl("trl:KTOConfig", "kto")(**kwargs, **config.trl_arguments(1.0, 1.0))
    path = ORPO_ARGS if name == "orpo" else CPO_ARGS
    return load_trl(path, name)(**kwargs, max_length=config.max_length, **config.trl_arguments())


@pytest.mark.parametrize("name", sorted(METHODS))
def test_liger_reaches_the_trl_config_of_every_preference_method(name, tmp_path):
    on = METHODS[name].from_mapping({"use_liger_kernel": "true"})
    assert trl_config(name, on, tmp_path).use_liger_kernel is True
    assert trl_config(name, METHODS[name](), tmp_path).use_liger_kernel is False
    assert "CUDA GPU only" in METHODS[name].help_of("use_liger_kernel")


@pytest.mark.parametrize("name", ["dpo", "kto"])
def test_precomputed_reference_log_probs_reach_trl_and_drop_the_reference_pass(name, tmp_path):
    config = METHODS[name](precompute_ref_log_probs=True)
    assert trl_config(name, config, tmp_path).precompute_ref_log_probs is True
    assert not config.reference_pass() and METHODS[name]().reference_pass()
    assert "one pass over the data" in METHODS[name].help_of("precompute_ref_log_probs")


def test_preflight_refuses_liger_here_and_says_what_each_trade_changes(storage):
    assert importlib.util.find_spec("liger_kernel") is None, "this test is for a machine without liger-kernel"
    ref = closer_snapshot(storage, "s", train_rows=12, test_rows=2)
    settings = {"base_model": "demo", "use_liger_kernel": "true", "precompute_ref_log_probs": "true",
                "gradient_checkpointing": "true"}
    report, _, _ = check(DPOTrainConfig.from_mapping(settings), storage, ref)
    assert report.refusals == [
        "use_liger_kernel needs liger-kernel, which is not installed here: pip install liger-kernel (it needs triton, "
        "which CUDA builds of torch bring)",
        "use_liger_kernel needs a CUDA GPU (Liger's kernels are Triton), this job runs on cpu: set "
        "use_liger_kernel=false"]
    text = report.markdown()
    assert "Liger kernels" in text and "not lowered" in text
    assert "precomputed reference log-probs: one no-grad pass over the 12 training rows" in text
    assert "gradient checkpointing on" in text and "reference pass" not in report.memory_parts
    plain, _, _ = check(DPOTrainConfig.from_mapping({"base_model": "demo"}), storage, ref)
    assert plain.ok and plain.tradeoffs == []  # CPU, checkpointing off by default: nothing to explain
    assert plain.memory_parts["activations"] > report.memory_parts["activations"]


def test_liger_on_cuda_with_liger_installed_is_not_refused(monkeypatch):
    monkeypatch.setattr(speedups, "liger_installed", lambda: True)
    report = PreflightReport(rows=10, memory_parts={"activations": 2 ** 30})
    speedups.check(report, DPOTrainConfig(use_liger_kernel=True), CUDA)
    assert report.ok and any("estimated 1.00 GiB" in t for t in report.tradeoffs)


def test_the_gpu_fast_preset_turns_the_trades_on():
    config = build_config(DPOTrainConfig, config_file=CONFIGS_DIR / "dpo.yaml", preset="gpu-fast")
    assert config.device == "cuda" and config.use_liger_kernel and config.precompute_ref_log_probs
    assert config.gradient_checkpointing is True and config.load_in_4bit is False


def test_the_train_form_offers_the_trades_and_vllm_for_their_methods():
    from alignui.training.app.panel import form_fields
    from alignui.training.methods import get_method

    specs = {s.name: s for s in form_fields([get_method(m) for m in ("dpo", "kto", "orpo", "simpo", "rlhf")])}
    liger = specs["use_liger_kernel"]
    assert liger.kind == "bool" and liger.group == "memory" and set(liger.methods) == {"dpo", "kto", "orpo", "simpo"}
    assert set(specs["precompute_ref_log_probs"].methods) == {"dpo", "kto"}
    assert specs["use_vllm"].methods == ("rlhf",) and specs["vllm_mode"].choices == ("colocate", "server")
    assert specs["vllm_gpu_memory_utilization"].kind == "float" and specs["vllm_server_port"].kind == "int"
    assert specs["num_processes"].key and specs["accelerate_config"].group == "scale"
