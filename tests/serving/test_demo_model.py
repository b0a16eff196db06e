import hashlib
import json

import pytest

from alignui.serving.demo_model import DEMO_VERSION, ensure_demo_model, is_built


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_demo_model_builds_identically_twice(tmp_path, demo_model_dir):
    fresh = ensure_demo_model(tmp_path / "demo", log=lambda m: None)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert digest(fresh / name) == digest(demo_model_dir / name), name
    info = json.loads((fresh / "build.json").read_text())
    assert info["version"] == DEMO_VERSION and info["weights_sha256"] == digest(fresh / "model.safetensors")


def test_a_finished_build_is_reused_and_a_partial_one_is_not(tmp_path, demo_model_dir):
    assert is_built(demo_model_dir)
    before = (demo_model_dir / "build.json").stat().st_mtime
    assert ensure_demo_model(demo_model_dir) == demo_model_dir
    assert (demo_model_dir / "build.json").stat().st_mtime == before
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    assert not is_built(partial)


def test_demo_tokenizer_has_a_chat_template_and_round_trips(demo_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(demo_model_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|user|>\nHi<|end|>\n<|assistant|>\n"
    sample = "Héllo, wörld! 你好 🙂"
    assert tok.decode(tok(sample, add_special_tokens=False)["input_ids"]) == sample
    assert tok.eos_token == "<|end|>" and tok.pad_token == "<|pad|>"


def test_demo_model_answers_in_readable_english(ctx):
    from alignui.serving.generation import PairSettings, generate_pair

    a, b = generate_pair(ctx.model, [{"role": "user", "content": "What color is a banana?"}],
                         PairSettings.same(seed=0, temperature=0))
    assert "banana" in a.text.lower() and a.text == b.text  # greedy: both sides identical
