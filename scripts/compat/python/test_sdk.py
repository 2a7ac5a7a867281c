"""The official OpenAI Python SDK against sluice, unchanged.

compat.sh starts sluice (SLUICE_URL) and the fake upstreams (FAKE_URL): an
OpenAI-compatible server and an Anthropic one, speaking their real wire
formats. Models: sluice-sim (built-in simulated), oai-chat (through the
OpenAI-compatible fake), ant-chat (through the Anthropic fake).
"""

import json
import os
import urllib.request
import uuid

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

BASE = os.environ["SLUICE_URL"] + "/v1"
FAKE = os.environ["FAKE_URL"]

client = OpenAI(base_url=BASE, api_key="not-needed-locally", max_retries=0)
# A client as users have it: the SDK's default retries (2) on.
retrying = OpenAI(base_url=BASE, api_key="not-needed-locally")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                "required": ["city", "unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}},
    },
]
ASK = [{"role": "user", "content": "Use get_weather for Oslo and get_time for its time zone."}]
KINDS = ["sluice-sim", "oai-chat", "ant-chat"]


def unique(prefix):
    return f"{prefix}-py-{uuid.uuid4().hex[:8]}"


def upstream_calls(model):
    with urllib.request.urlopen(FAKE + "/_calls") as r:
        return json.load(r).get(model, 0)


def check_calls(calls):
    assert [c.function.name for c in calls] == ["get_weather", "get_time"], calls
    assert calls[0].id != calls[1].id
    for c in calls:
        assert c.type == "function"
        assert len(c.id) < 64, f"id repeated into itself: {c.id}"
        assert isinstance(json.loads(c.function.arguments), dict)
    weather = json.loads(calls[0].function.arguments)
    assert isinstance(weather["city"], str) and weather["unit"] in ("celsius", "fahrenheit")


@pytest.mark.parametrize("model", KINDS)
def test_stream_helper_accumulates_parallel_tool_calls(model):
    # The helper concatenates every string fragment except index and type:
    # an id or name repeated in later fragments would come out doubled.
    with client.chat.completions.stream(model=model, messages=ASK, tools=TOOLS) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    msg = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    check_calls(msg.tool_calls)

    results = [
        {"role": "tool", "tool_call_id": c.id, "content": "18C" if c.function.name == "get_weather" else "14:05"}
        for c in msg.tool_calls
    ]
    second = client.chat.completions.create(model=model, messages=ASK + [msg.model_dump(exclude_none=True)] + results, tools=TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content
    assert not second.choices[0].message.tool_calls


@pytest.mark.parametrize("model", KINDS)
def test_non_streamed_parallel_tool_calls(model):
    resp = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS)
    assert resp.choices[0].finish_reason == "tool_calls"
    assert resp.choices[0].message.content is None
    check_calls(resp.choices[0].message.tool_calls)


class City(BaseModel):
    name: str
    population: int
    capital: bool


@pytest.mark.parametrize("model", ["oai-chat", "ant-chat"])
def test_parse_with_a_pydantic_schema(model):
    completion = client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "Name a city and its population."}], response_format=City
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, City)
    assert completion.choices[0].finish_reason == "stop"


def test_logprobs_streamed_and_not():
    stream = client.chat.completions.create(
        model="oai-chat", messages=[{"role": "user", "content": "hi"}], logprobs=True, top_logprobs=2, stream=True
    )
    tokens = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].logprobs:
            for lp in chunk.choices[0].logprobs.content:
                tokens += 1
                assert len(lp.top_logprobs) == 2
    assert tokens > 0
    resp = client.chat.completions.create(model="oai-chat", messages=[{"role": "user", "content": "hi"}], logprobs=True, top_logprobs=1)
    assert len(resp.choices[0].logprobs.content) >= tokens
    assert resp.system_fingerprint == "fp_fake"


def test_logprobs_refused_for_anthropic():
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="ant-chat", messages=[{"role": "user", "content": "hi"}], logprobs=True)
    assert e.value.param == "logprobs" and e.value.code == "unsupported_parameter"


@pytest.mark.parametrize("model", ["oai-chat", "ant-chat"])
def test_cached_tokens(model):
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "a long shared prefix " * 20}])
    assert resp.usage.prompt_tokens_details.cached_tokens > 0
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    usage = [c.usage for c in stream if c.usage][-1]
    assert usage.prompt_tokens_details.cached_tokens > 0


def test_extra_body_reaches_the_upstream():
    # vLLM-style parameters sent through extra_body are passed through, not
    # dropped: the fake answers with logprobs only when it receives them.
    resp = client.chat.completions.create(
        model="oai-chat", messages=[{"role": "user", "content": "hi"}], extra_body={"logprobs": True, "top_k": 5}
    )
    assert resp.choices[0].logprobs is not None


def test_upstream_400_keeps_code_and_param():
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="oai/" + unique("fail-400"), messages=[{"role": "user", "content": "hi"}])
    assert e.value.param == "temperature" and e.value.code == "invalid_value"


def test_retries_compose_with_the_sdks():
    model = unique("fail-503")
    with pytest.raises(openai.InternalServerError) as e:
        retrying.chat.completions.create(model="oai/" + model, messages=[{"role": "user", "content": "hi"}])
    assert e.value.response.headers["x-should-retry"] == "false"
    assert upstream_calls(model) == 2  # sluice's call and retry; none from the SDK


def test_all_rate_limited_is_429():
    model = unique("fail-429")
    with pytest.raises(openai.RateLimitError) as e:
        retrying.chat.completions.create(model="oai/" + model, messages=[{"role": "user", "content": "hi"}])
    assert int(e.value.response.headers["retry-after"]) <= 5
    assert upstream_calls(model) == 2


def test_open_breaker_fails_fast():
    model = unique("fail-503")
    with pytest.raises(openai.InternalServerError):
        retrying.chat.completions.create(model="oai/" + model, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.InternalServerError) as e:
        retrying.chat.completions.create(model="oai/" + model, messages=[{"role": "user", "content": "hi"}])
    assert e.value.response.headers["x-should-retry"] == "false"
    assert upstream_calls(model) == 2
