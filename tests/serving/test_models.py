import pytest
import torch

from alignui.config import AppConfig
from alignui.errors import UserError
from alignui.serving.loading import load_model, pick_device, pick_dtype, quantization_config


def test_cpu_loads_in_fp32():
    assert pick_dtype("cpu") == torch.float32


def test_four_bit_without_cuda_is_refused_with_advice(storage):
    with pytest.raises(UserError, match="4-bit loading needs a CUDA GPU.*drop --load-in-4bit"):
        quantization_config("cpu", torch.float32)
    with pytest.raises(UserError, match="4-bit"):
        load_model(AppConfig(storage=storage, model="demo", load_in_4bit=True))


def test_cuda_is_used_when_present_and_refused_when_absent():
    if torch.cuda.is_available():
        assert pick_device("cuda") == pick_device("auto") == "cuda"
        return
    with pytest.raises(UserError, match="no CUDA GPU"):
        pick_device("cuda")


def test_unreachable_hub_model_falls_back_to_demo_with_a_notice(storage):
    logs = []
    handle = load_model(AppConfig(storage=storage, model="HuggingFaceTB/SmolLM2-135M-Instruct", offline=True),
                        log=logs.append)
    assert handle.is_demo and handle.device == "cpu" and handle.dtype == torch.float32
    assert "Could not load HuggingFaceTB/SmolLM2-135M-Instruct" in handle.notice
    assert any("demo model instead" in m for m in logs)


def test_local_path_loads_that_model(demo_model_dir, storage):
    handle = load_model(AppConfig(storage=storage, model=str(demo_model_dir)))
    assert not handle.is_demo and handle.ref == str(demo_model_dir) and handle.notice is None
    assert handle.tokenizer.padding_side == "left" and handle.tokenizer.pad_token is not None
    assert handle.context_length == 512
