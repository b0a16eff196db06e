"""Generators by name and pairs across them: the served demo model in-process beside `transformers serve`."""

import json
import random

import pytest

from alignui.annotation.pairs import stream_annotation_pair
from alignui.config import EndpointSpec
from alignui.errors import UserError
from alignui.serving.endpoints import Endpoint, EndpointError, EndpointRegistry
from alignui.serving.generation import PairSettings
from alignui.serving.generators import Generators, PairSource

ASK = [{"role": "user", "content": "Tell me about the sea."}]


def generators(ctx, **endpoints: str) -> Generators:
    """The ctx's model and store with endpoints name -> 'BASE_URL#MODEL'."""
    registry = EndpointRegistry({name: Endpoint(EndpointSpec(name, *where.rsplit("#", 1)), timeout=30)
                                 for name, where in endpoints.items()})
    return Generators(ctx.model, ctx.store, registry)


def stored(store, pair_id: str) -> list[tuple[str, dict]]:
    rows = store.query("SELECT g.model_ref, g.params FROM comparisons c JOIN generations g "
                       "ON g.id IN (c.gen_a, c.gen_b) WHERE c.id = ? ORDER BY g.id = c.gen_b", [pair_id])
    return [(ref, json.loads(params)) for ref, params in rows]


def test_names_list_the_served_model_then_adapters_then_endpoints(ctx, openai_server):
    gens = generators(ctx, local=f"{openai_server.base_url}#{openai_server.model}")
    assert gens.names() == ["demo", "local"]
    assert {gens.resolve(n).kind for n in ("", "base", "demo")} == {"model"}
    assert gens.resolve("local").kind == "endpoint"
    with pytest.raises(UserError, match=r"unknown generator 'nope'.*\['demo', 'local'\]"):
        gens.resolve("nope")


def test_a_pair_across_the_served_model_and_an_endpoint_streams_both_sides_and_records_both(ctx, openai_server):
    gens = generators(ctx, local=f"{openai_server.base_url}#{openai_server.model}")
    sides = PairSource.named(gens, "", "local")
    steps = list(stream_annotation_pair(ctx.store, ctx.model, ASK, PairSettings.same(max_new_tokens=32),
                                        random.Random(0), sides=sides))
    pair = steps[-1].pair
    assert pair is not None and all(s.pair is None for s in steps[:-1])
    assert any(s.text_a for s in steps[:-1]) and any(s.text_b for s in steps[:-1])  # both sides stream in
    (ref_a, params_a), (ref_b, params_b) = stored(ctx.store, pair.id)
    assert (ref_a, ref_b) == ("demo", "local") == (pair.model_a, pair.model_b)
    assert params_a["generator"] == {"kind": "model", "name": "demo"} and params_a["side"] == "a"
    assert params_b["generator"]["kind"] == "endpoint" and params_b["generator"]["model"] == openai_server.model
    assert params_a["seed"] == params_b["seed"] and params_b["max_new_tokens"] == 32 and params_b["side"] == "b"


@pytest.mark.parametrize("mode", ["cut", "html"])
def test_a_failing_endpoint_side_saves_nothing_and_the_app_goes_on(ctx, stub_server, mode):
    stub_server.mode = mode
    gens = generators(ctx, odd=f"{stub_server.base_url}#m")
    before = ctx.store.table_counts(("prompts", "generations", "comparisons"))
    with pytest.raises(EndpointError, match="endpoint 'odd'"):
        list(stream_annotation_pair(ctx.store, ctx.model, ASK, PairSettings.same(max_new_tokens=16),
                                    random.Random(0), sides=PairSource.named(gens, "", "odd")))
    assert ctx.store.table_counts(("prompts", "generations", "comparisons")) == before
    last = list(stream_annotation_pair(ctx.store, ctx.model, ASK, PairSettings.same(max_new_tokens=8),
                                       random.Random(1), sides=PairSource.named(gens, "", "")))[-1]
    assert last.pair is not None  # the model still serves


def test_two_endpoint_sides_need_no_local_model_call(ctx, stub_server):
    gens = generators(ctx, one=f"{stub_server.base_url}#m1", two=f"{stub_server.base_url}#m2")
    last = list(gens.stream_pair(ASK, gens.resolve("one"), gens.resolve("two"), PairSettings()))[-1]
    assert (last.text_a, last.text_b) == ("Hello there", "Hello there")
    assert [g.model_ref for g in last.result] == ["one", "two"]


def test_the_annotate_flow_uses_each_sides_generator_and_clears_both_on_a_failure(ctx, stub_server):
    from alignui.annotation import workspace as flow
    from alignui.annotation.prefs import AnnotationPrefs

    gens = generators(ctx, odd=f"{stub_server.base_url}#m")
    assert [name for _, name in gens.choices()] == ["", "odd"]
    prefs = AnnotationPrefs.from_dict({**AnnotationPrefs(max_new_tokens=8).to_dict(), "model_b": "odd"})
    assert (prefs.model_a, prefs.model_b) == ("", "odd")
    last = list(flow.generate(ctx.store, ctx.model, flow.Workspace(), "Hi", prefs, random.Random(0), annotator="ann",
                              generators=gens))[-1]
    pair = ctx.store.get_comparison(last.ws.pair_id)
    assert (pair.model_a, pair.model_b, last.text_b) == ("demo", "odd", "Hello there")
    stub_server.mode = "cut"
    last = list(flow.generate(ctx.store, ctx.model, flow.Workspace(), "Hi again", prefs, random.Random(0),
                              annotator="ann", generators=gens))[-1]
    assert "endpoint 'odd'" in last.status and (last.text_a, last.text_b, last.ws.pair_id) == ("", "", None)
