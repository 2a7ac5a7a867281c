"""/v1/embeddings through the official OpenAI Python SDK, unchanged: float
and base64 (the SDK's default, decoded by the SDK), token arrays,
dimensions, same-space fallback when the first target fails, and errors.
Models come from scripts/compat/sluice.yaml: sim-embed (simulated, 64
dimensions) and embed-with-fallback (a failing endpoint of the same space,
then sim-embed's)."""

import math
import os

import openai
import pytest
from openai import OpenAI

client = OpenAI(base_url=os.environ["SLUICE_URL"] + "/v1", api_key="not-needed-locally", max_retries=0)


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def test_float_and_base64_give_the_same_unit_vectors():
    texts = ["the river flows to the sea", "the river flows to the ocean", "quarterly tax deadline"]
    as_float = client.embeddings.create(model="sim-embed", input=texts, encoding_format="float")
    as_default = client.embeddings.create(model="sim-embed", input=texts)  # the SDK asks for base64
    for res in (as_float, as_default):
        assert res.object == "list"
        assert [d.index for d in res.data] == [0, 1, 2]
        assert res.usage.prompt_tokens > 0 and res.usage.total_tokens == res.usage.prompt_tokens
        for d in res.data:
            assert len(d.embedding) == 64
            assert abs(norm(d.embedding) - 1) < 1e-5
    for f, b in zip(as_float.data, as_default.data):
        assert f.embedding == pytest.approx(b.embedding, abs=1e-7)
    a, b, c = (d.embedding for d in as_float.data)
    assert sum(x * y for x, y in zip(a, b)) > sum(x * y for x, y in zip(a, c))


def test_string_tokens_and_dimensions():
    assert len(client.embeddings.create(model="sim-embed", input="hello").data) == 1
    tokens = client.embeddings.create(model="sim-embed", input=[[1, 2, 3], [4, 5]], encoding_format="float")
    assert len(tokens.data) == 2
    short = client.embeddings.create(model="sim-embed", input="hello", dimensions=16)
    assert len(short.data[0].embedding) == 16
    assert abs(norm(short.data[0].embedding) - 1) < 1e-5


def test_many_inputs_split_into_provider_calls():
    res = client.embeddings.create(model="sim-embed", input=[f"document {i}" for i in range(100)])
    assert len(res.data) == 100
    one = client.embeddings.create(model="sim-embed", input="document 42", encoding_format="float")
    assert one.data[0].embedding == pytest.approx(res.data[42].embedding, abs=1e-7)


def test_same_space_fallback():
    raw = client.embeddings.with_raw_response.create(model="embed-with-fallback", input=["a", "b"])
    assert raw.headers["x-sluice-provider"] == "sim"
    assert len(raw.parse().data) == 2


def test_errors_are_typed():
    with pytest.raises(openai.NotFoundError) as e:
        client.embeddings.create(model="no-such-model", input="x")
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="sim-embed", input="")
    assert e.value.param == "input"
