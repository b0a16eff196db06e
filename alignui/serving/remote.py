"""`--model endpoint:NAME`: a registered OpenAI-compatible endpoint as THE served model, with no local weights.

Owns: the ModelHandle of an endpoint-served app (`endpoint_handle`) and the one-line refusals of what needs
local weights (adapters, the local judge, token counts).

Invariants:
- Nothing is loaded: no torch model, no tokenizer (handle.model, .tokenizer and .dtype are None); the
  handle is ready at once. There is no health probe at start: an Inference Endpoint that scaled to zero
  wakes on its first request, and a dead endpoint is one line on each request (nothing saved), not a
  start-up failure that would need a restart once it is back.
- The served model's name is `endpoint:NAME` (what --model said): the header, /models and the stored
  generations' model_ref use it; each generation's params record the endpoint (URL and model, no key).
- Prompt length: there is no local tokenizer, so the app's character limit (ALIGNUI_MAX_PROMPT_CHARS)
  applies before a request, and a prompt the endpoint's context cannot take is the endpoint's own
  refusal, one line naming it.
"""

from __future__ import annotations

from typing import Callable

from alignui.config import AppConfig
from alignui.errors import UserError
from alignui.serving.endpoints import EndpointRegistry
from alignui.serving.loading import ModelHandle

REMOTE_DEVICE = "endpoint"


def endpoint_handle(config: AppConfig, log: Callable[[str], None] = print) -> ModelHandle:
    """The handle of the endpoint `config.model` names (AppConfig checked that it is registered)."""
    spec = config.served_endpoint
    endpoint = EndpointRegistry.from_config(config).get(spec.name)
    log(f"alignui: serving endpoint '{spec.name}' ({spec.model} at {spec.base_url}); no local weights are loaded")
    return ModelHandle(model=None, tokenizer=None, ref=config.model, device=REMOTE_DEVICE, dtype=None,
                       endpoint=endpoint,
                       notice=f"The served model is an endpoint ({spec.model}): no local weights, so adapters "
                              "cannot be served here; training needs a local base model.")


def no_local_weights(handle: ModelHandle, what: str) -> UserError:
    """`what` needs local weights, and the served model is an endpoint: one line saying what to do."""
    return UserError(f"{what} needs local weights, and the served model is {handle.ref} (an endpoint); serve a "
                     "local base model with --model to use it")


ADAPTERS_NOTE = ("adapters are not offered: the served model is {ref}, an endpoint with no local weights to apply "
                 "them to (serve their base model with --model to compare adapters)")
