"""Training configs: defaults, coercion of text values, validation messages, presets, the method registry."""

import re

import pytest

from alignui.training.config import CONFIGS_DIR, TrainConfigError, build_config, parse_sets, preset_names
from alignui.training.dpo import DPOTrainConfig
from alignui.training.methods import Method, MethodUnavailable, get_method, method_names


def test_defaults_follow_the_seed_and_are_valid():
    c = DPOTrainConfig()
    assert (c.beta, c.learning_rate, c.num_train_epochs, c.loss_type) == (0.1, 5e-6, 1.0, "sigmoid")
    assert c.target_modules() == "all-linear" and c.warnings() == []
    assert "0.05-0.1 bold" in DPOTrainConfig.help_of("beta")


def test_text_values_are_coerced_per_field():
    c = DPOTrainConfig.from_mapping({"learning_rate": "1e-4", "lora_r": "8", "gradient_checkpointing": "true",
                                     "max_prompt_length": "none", "num_train_epochs": 2,
                                     "lora_target_modules": ["q_proj", "v_proj"]})
    assert c.learning_rate == 1e-4 and c.lora_r == 8 and c.gradient_checkpointing is True
    assert c.max_prompt_length is None and c.num_train_epochs == 2.0
    assert c.target_modules() == ["q_proj", "v_proj"]


@pytest.mark.parametrize("values, fragment", [
    ({"betta": "0.2"}, "unknown setting 'betta' (did you mean 'beta'?)"),
    ({"lora_r": "8.5"}, "lora_r must be a int"),
    ({"gradient_checkpointing": "maybe"}, "gradient_checkpointing must be"),
    ({"max_prompt_length": 600, "max_length": 512}, "must be at least 1 and below max_length"),
    ({"label_smoothing": 0.1}, "only applies to loss_type=robust"),
    ({"loss_type": "kto"}, "loss_type must be one of sigmoid, ipo, hinge, robust"),
    ({"lora_target_modules": "q_proj,lm_head"}, "lm_head cannot be a LoRA target"),
    ({"num_train_epochs": 0, "max_steps": -1}, "training would do nothing"),
    ({"beta": 0}, "beta must be positive"),
])
def test_bad_settings_say_what_to_do(values, fragment):
    with pytest.raises(TrainConfigError, match=re.escape(fragment)):
        DPOTrainConfig.from_mapping(values)


def test_robust_loss_takes_label_smoothing_and_advice_is_given():
    c = DPOTrainConfig.from_mapping({"loss_type": "robust", "label_smoothing": "0.1", "learning_rate": 1e-3,
                                     "beta": 0.6})
    assert c.label_smoothing == 0.1
    advice = " ".join(c.warnings())
    assert "outside the usual LoRA range" in advice and "conservative" in advice


def test_every_preset_builds_and_overrides_win():
    path = CONFIGS_DIR / "dpo.yaml"
    names = preset_names(path)
    assert names[0] == "cpu-demo" and {"gpu-lora", "gpu-qlora"} <= set(names)
    for name in names:
        assert isinstance(build_config(DPOTrainConfig, config_file=path, preset=name), DPOTrainConfig)
    qlora = build_config(DPOTrainConfig, config_file=path, preset="gpu-qlora", overrides=parse_sets(["beta=0.3"]))
    assert qlora.load_in_4bit and qlora.gradient_checkpointing and qlora.beta == 0.3
    with pytest.raises(TrainConfigError, match="no preset 'nope'"):
        build_config(DPOTrainConfig, config_file=path, preset="nope")


def test_flat_yaml_and_set_parsing(tmp_path):
    flat = tmp_path / "mine.yaml"
    flat.write_text("method: dpo\nbeta: 0.2\nlearning_rate: 1.0e-5\n")
    c = build_config(DPOTrainConfig, config_file=flat)
    assert (c.beta, c.learning_rate) == (0.2, 1e-5)
    with pytest.raises(TrainConfigError, match="key=value"):
        parse_sets(["beta"])
    (tmp_path / "bad.yaml").write_text("[1, 2")
    with pytest.raises(TrainConfigError, match="not valid YAML"):
        build_config(DPOTrainConfig, config_file=tmp_path / "bad.yaml")


def test_method_registry_resolves_and_reports_missing_methods():
    assert "dpo" in method_names()
    dpo = get_method("dpo")
    assert dpo.config_class() is DPOTrainConfig and callable(dpo.job()) and dpo.presets_path.is_file()
    ghost = Method("ghost", "Ghost", "alignui.training.nope:Cfg", "alignui.training.nope:run", "ghost.yaml")
    assert not ghost.available
    with pytest.raises(MethodUnavailable, match="'ghost' is not available"):
        ghost.config_class()
    with pytest.raises(Exception, match="unknown training method 'ppo'"):
        get_method("ppo")


def test_the_help_says_max_steps_wins_over_epochs_and_the_demo_preset_is_the_learning_rate_exception():
    """The form's help: "max steps" beside "num train epochs 1" once ran 20 epochs unexplained; the cpu-demo
    preset's 3e-4 sat under "outside 5e-7..5e-5 ... a broken model"."""
    from alignui.training.reward import RewardTrainConfig
    from alignui.training.rlhf import RLHFTrainConfig

    assert "wins over num train epochs" in DPOTrainConfig.help_of("max_steps")
    assert "ignored when max steps > 0" in DPOTrainConfig.help_of("num_train_epochs")
    for config in (DPOTrainConfig, RewardTrainConfig, RLHFTrainConfig):
        assert "cpu-demo preset is the exception" in config.help_of("learning_rate"), config
