"""OpenAI-compatible endpoints as generators: one streamed response per call, through huggingface_hub.

Owns: `Endpoint` (a registered `--endpoint NAME=BASE_URL#MODEL` plus the key it sends), streaming one
side of a pair from it with `InferenceClient(base_url=..., api_key=...).chat_completion(stream=True)`
(vLLM, TGI, SGLang, llama.cpp, Ollama, Inference Endpoints and `transformers serve` all speak it), and
turning every way that can fail into one line that names the endpoint.

Invariants:
- The key never leaves this module except as the request's Authorization header: it is not in
  repr(), describe(), an error or a stored record. Without a configured key no Authorization header
  is sent at all (huggingface_hub would otherwise send the machine's cached Hub token to any URL).
- A response counts only when the stream says it finished (a `finish_reason`); a stream that stops
  without one (server killed, connection cut) or never speaks OpenAI's format is an EndpointError,
  and nothing is handed back for saving.
- Each call gets its own InferenceClient, closed when the call ends or is abandoned: the client keeps
  a streamed response open until it is closed.
- Offline mode (HF_HUB_OFFLINE) means "never contact the Hub", not "no network": huggingface_hub's
  shared session refuses every request when offline, so `reach_endpoints_offline` lets requests to
  hosts other than the Hub's through that check (Hub hosts stay blocked).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from alignui.config import AppConfig, EndpointSpec
from alignui.db.records import Messages, NewGeneration
from alignui.errors import UserError
from alignui.serving.generation import SamplingSettings

KIND = "endpoint"
NETWORK_ERRORS = {"ConnectError": "could not be reached (connection refused or unknown host)",
                  "ConnectTimeout": "could not be reached (connection timed out)",
                  "RemoteProtocolError": "stopped answering mid-stream (the connection was cut)",
                  "ReadError": "stopped answering mid-stream (the connection was cut)"}


class EndpointError(UserError):
    """An endpoint failed; the message names it (never its key) and says nothing was saved."""


@dataclass(frozen=True)
class SideUpdate:
    """One side's text so far; `generation` only on the last update, once the side finished."""

    text: str
    generation: NewGeneration | None = None


@dataclass(frozen=True)
class Endpoint:
    spec: EndpointSpec
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 120.0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def where(self) -> str:
        return f"endpoint '{self.spec.name}' ({self.spec.base_url}, model {self.spec.model})"

    def client(self):
        from huggingface_hub import InferenceClient

        reach_endpoints_offline()
        headers = None if self.api_key else {"authorization": None}  # no key: no implicit Hub token either
        return InferenceClient(base_url=self.spec.base_url, api_key=self.api_key, timeout=self.timeout,
                               headers=headers)

    def error(self, what: str) -> EndpointError:
        """One line naming the endpoint; anything the server echoed is cut short and scrubbed of the key."""
        text = re.sub(r"\s+", " ", what).strip()
        if self.api_key:
            text = text.replace(self.api_key, "***")
        return EndpointError(f"{self.where} {text}; nothing was saved")

    def stream(self, messages: Messages, side: SamplingSettings, seed: int, *, label: str = "a",
               cancel: threading.Event | None = None) -> Iterator[SideUpdate]:
        """Stream one response; the last update carries its NewGeneration. Raises EndpointError on any failure.
        A set `cancel` ends the stream quietly (no generation)."""
        started = time.perf_counter()
        text, chunks, usage, finish = "", 0, None, None
        client = self.client()
        try:
            stream = client.chat_completion(list(messages), model=self.spec.model, stream=True, seed=seed,
                                            max_tokens=side.max_new_tokens, temperature=side.temperature,
                                            top_p=side.top_p)
            for chunk in stream:
                if cancel is not None and cancel.is_set():
                    return
                usage = getattr(chunk, "usage", None) or usage
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                piece = choice.delta.content if choice.delta is not None else None
                if piece:
                    text, chunks = text + piece, chunks + 1
                    yield SideUpdate(text)
                finish = choice.finish_reason or finish
        except EndpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure of a remote server becomes one line
            raise self.error(explain(exc, self.spec)) from None
        finally:
            client.close()
        if finish is None:
            raise self.error("stopped before the response was finished (the stream ended with no finish_reason)"
                             if text else "did not answer like an OpenAI-compatible /v1/chat/completions stream")
        n_tokens = getattr(usage, "completion_tokens", None) or chunks
        params = {**asdict(side), "seed": seed, "side": label, "generator": self.record(), "finish_reason": finish}
        yield SideUpdate(text, NewGeneration(model_ref=self.name, text=text, params=params, n_tokens=n_tokens,
                                             latency_ms=round((time.perf_counter() - started) * 1000, 1)))

    def complete(self, messages: Messages, *, max_tokens: int, temperature: float = 0.0) -> str:
        """One whole (non-streamed) answer, for judges; EndpointError on any failure."""
        client = self.client()
        try:
            reply = client.chat_completion(list(messages), model=self.spec.model, max_tokens=max_tokens,
                                           temperature=temperature)
            content = reply.choices[0].message.content
        except Exception as exc:  # noqa: BLE001 - every failure of a remote server becomes one line
            raise self.error(explain(exc, self.spec)) from None
        finally:
            client.close()
        if not isinstance(content, str):
            raise self.error("did not answer like an OpenAI-compatible /v1/chat/completions (no message content)")
        return content

    def record(self) -> dict:
        """What a stored generation says about its generator (no key)."""
        return {"kind": KIND, "name": self.name, "base_url": self.spec.base_url, "model": self.spec.model}


def _is_hub(host: str) -> bool:
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    return host == urlsplit(constants.ENDPOINT).hostname or host in ("huggingface.co", "hf.co") or host.endswith(
        (".huggingface.co", ".hf.co"))


def _offline_gate(hook):
    """`hook` (huggingface_hub's request hook, which refuses everything offline) only for Hub hosts when offline."""
    def gate(request):
        from huggingface_hub import constants

        if constants.is_offline_mode() and not _is_hub(request.url.host):
            return None
        return hook(request)

    gate.alignui_offline_gate = True
    return gate


def reach_endpoints_offline() -> None:
    """Let huggingface_hub's shared session reach registered endpoints when HF_HUB_OFFLINE is set (idempotent;
    redone if the library recreates its session)."""
    from huggingface_hub import get_session

    session = get_session()
    hooks = session.event_hooks
    if not any(getattr(h, "alignui_offline_gate", False) for h in hooks["request"]):
        hooks["request"] = [_offline_gate(h) for h in hooks["request"]]
        session.event_hooks = hooks


def explain(exc: BaseException, spec: EndpointSpec) -> str:
    """What went wrong, in words a user can act on (without anything the key could be read from)."""
    names = [k.__name__ for k in type(exc).__mro__]
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return (f"refused the API key (HTTP {status}): set ALIGNUI_ENDPOINT_API_KEY (else HF_TOKEN, else "
                "OPENAI_API_KEY) to a key it accepts")
    if status in (400, 404, 422):
        return (f"rejected the request (HTTP {status}): check that it serves the model '{spec.model}' (its "
                "/v1/models lists them) and that BASE_URL ends where /chat/completions is appended (often /v1)")
    if status is not None:
        return f"failed (HTTP {status}); try again or check the server's log"
    if "InferenceTimeoutError" in names or "TimeoutException" in names:
        return "did not answer in time (timeout)"
    for name, why in NETWORK_ERRORS.items():
        if name in names:
            return why
    if "TransportError" in names or "HTTPError" in names:
        return f"stopped answering ({type(exc).__name__})"
    return f"did not answer like an OpenAI-compatible /v1/chat/completions stream ({type(exc).__name__})"


@dataclass(frozen=True)
class EndpointRegistry:
    """The endpoints this app was started with, by name."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: AppConfig) -> "EndpointRegistry":
        key = getattr(config, "endpoint_api_key", None)
        return cls({spec.name: Endpoint(spec, key) for spec in getattr(config, "endpoints", ())})

    @property
    def names(self) -> list[str]:
        return list(self.endpoints)

    def get(self, name: str) -> Endpoint | None:
        return self.endpoints.get(name)
