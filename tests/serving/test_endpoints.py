"""OpenAI-compatible endpoints as generators: streaming from `transformers serve`, and every way it can fail.

The failures that `transformers serve` cannot produce (401, a non-OpenAI body, a cut stream) come from the
minimal stub server of tests/serving/conftest.py, labelled there.
"""

import pytest

from alignui.config import EndpointSpec
from alignui.serving.endpoints import Endpoint, EndpointError
from alignui.serving.generation import SamplingSettings

SECRET = "sk-test-0123456789-secret"
ASK = [{"role": "user", "content": "Tell me about the sea."}]


def endpoint(base_url: str, model: str = "m", name: str = "remote", key: str | None = SECRET) -> Endpoint:
    return Endpoint(EndpointSpec(name, base_url, model), api_key=key, timeout=30)


def run(ep: Endpoint, **settings):
    return list(ep.stream(ASK, SamplingSettings(**settings), seed=3, label="b"))


def test_a_response_streams_from_transformers_serve_and_records_its_generator(openai_server):
    updates = run(endpoint(openai_server.base_url, openai_server.model, "local"), max_new_tokens=24)
    gen = updates[-1].generation
    assert gen is not None and all(u.generation is None for u in updates[:-1])
    assert [u.text for u in updates[:-1]] == sorted((u.text for u in updates[:-1]), key=len)  # text only grows
    assert gen.text == updates[-1].text and gen.text.strip() and 1 <= gen.n_tokens <= 24
    assert gen.model_ref == "local" and gen.latency_ms > 0
    assert gen.params["generator"] == {"kind": "endpoint", "name": "local", "base_url": openai_server.base_url,
                                       "model": openai_server.model}
    assert gen.params["max_new_tokens"] == 24 and gen.params["seed"] == 3 and gen.params["side"] == "b"
    assert gen.params["finish_reason"] in ("stop", "length")
    assert SECRET not in repr(gen)


def test_a_wrong_model_name_is_one_line_naming_the_endpoint(openai_server):
    with pytest.raises(EndpointError) as err:
        run(endpoint(openai_server.base_url, "no/such-model", "typo"))
    text = str(err.value)
    assert "endpoint 'typo'" in text and "no/such-model" in text and "HTTP 400" in text
    assert "\n" not in text and SECRET not in text and "nothing was saved" in text


def test_an_unreachable_endpoint_says_so(unused_port):
    with pytest.raises(EndpointError, match=r"endpoint 'gone' .*could not be reached"):
        run(endpoint(f"http://127.0.0.1:{unused_port}/v1", name="gone"))


@pytest.fixture
def unused_port():
    from conftest import free_port

    return free_port()


def test_a_wrong_key_is_a_401_line_without_the_key(stub_server):
    stub_server.key = "the-right-key"
    with pytest.raises(EndpointError) as err:
        run(endpoint(stub_server.base_url, name="guarded"))
    text = str(err.value)
    assert "endpoint 'guarded'" in text and "HTTP 401" in text and "ALIGNUI_ENDPOINT_API_KEY" in text
    assert SECRET not in text and "the-right-key" not in text
    assert stub_server.seen_auth == [f"Bearer {SECRET}"]  # the key went where it belongs: the header


def test_without_a_key_no_authorization_header_is_sent(stub_server, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_machine_token_must_not_leak")  # what huggingface_hub would send implicitly
    assert run(endpoint(stub_server.base_url, key=None))[-1].generation.text == "Hello there"
    assert stub_server.seen_auth == [None]


@pytest.mark.parametrize("mode, fragment", [
    ("html", "did not answer like an OpenAI-compatible"),
    ("cut", "stopped before the response was finished"),
])
def test_non_openai_answers_and_cut_streams_are_errors(stub_server, mode, fragment):
    stub_server.mode = mode
    with pytest.raises(EndpointError, match=fragment) as err:
        run(endpoint(stub_server.base_url, name="odd"))
    assert "endpoint 'odd'" in str(err.value) and "\n" not in str(err.value)


def test_a_complete_stub_stream_is_accepted(stub_server):
    gen = run(endpoint(stub_server.base_url))[-1].generation
    assert (gen.text, gen.n_tokens, gen.params["finish_reason"]) == ("Hello there", 2, "stop")


def test_offline_mode_still_blocks_the_hub_but_not_a_registered_endpoint(stub_server, monkeypatch):
    from huggingface_hub import constants, get_session
    from huggingface_hub.errors import OfflineModeIsEnabled

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert run(endpoint(stub_server.base_url))[-1].generation.text == "Hello there"
    with pytest.raises(OfflineModeIsEnabled):
        get_session().get("https://huggingface.co/api/models/gpt2")
