"""The official Anthropic Python SDK against sluice's Messages door, unchanged.

compat.sh starts sluice (SLUICE_URL) and the fakes (FAKE_URL) of the
Anthropic, OpenAI-compatible and Bedrock APIs. Models: sluice-sim (built-in
simulated, translated), ant-chat (Anthropic fake, served natively), oai-chat
(OpenAI-compatible fake, translated), ant-then-bedrock (a failing Anthropic
target, then Claude on a Bedrock ConverseStream fake).
"""

import json
import os
import urllib.request

import anthropic
import pytest

SLUICE = os.environ["SLUICE_URL"]
FAKE = os.environ["FAKE_URL"]

client = anthropic.Anthropic(base_url=SLUICE, api_key="not-needed-locally", max_retries=0)

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
    {"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}},
]
ASK = [{"role": "user", "content": "Use get_weather for Oslo and get_time for its time zone."}]
KINDS = ["sluice-sim", "ant-chat", "oai-chat"]


def upstream_calls(model):
    with urllib.request.urlopen(FAKE + "/_calls") as r:
        return json.load(r).get(model, 0)


@pytest.mark.parametrize("model", KINDS)
def test_stream_text(model):
    with client.messages.stream(model=model, max_tokens=100, messages=[{"role": "user", "content": "Hello from Python"}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    text = "".join(pieces)
    assert text.startswith('Simulated reply to "Hello from Python":')
    assert len(pieces) >= 12
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens >= 12 and final.usage.input_tokens > 0

    whole = client.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": "Hello from Python"}])
    assert whole.content[0].text == text


@pytest.mark.parametrize("model", KINDS + ["ant-then-bedrock"])
def test_parallel_tool_use_round_trip(model):
    deltas = {}
    with client.messages.stream(model=model, max_tokens=200, messages=ASK, tools=TOOLS) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                deltas[event.index] = deltas.get(event.index, 0) + 1
        msg = stream.get_final_message()
    assert msg.stop_reason == "tool_use"
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert [u.name for u in uses] == ["get_weather", "get_time"]
    assert uses[0].id != uses[1].id
    assert isinstance(uses[0].input["city"], str) and uses[0].input["unit"] in ("celsius", "fahrenheit")
    assert isinstance(uses[1].input["tz"], str)
    assert max(deltas.values()) > 1, "arguments arrive over several deltas"

    results = [
        {"type": "tool_result", "tool_use_id": u.id, "content": "18C" if u.name == "get_weather" else "14:05"} for u in uses
    ]
    second = client.messages.create(
        model=model,
        max_tokens=200,
        tools=TOOLS,
        messages=ASK + [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]}, {"role": "user", "content": results}],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text" and second.content[0].text


def test_typed_errors():
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="no-such-model", max_tokens=10, messages=ASK)
    assert e.value.status_code == 404 and e.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model="sluice-sim", max_tokens=10, messages=ASK, tool_choice={"type": "tool"})
    assert "tool_choice.name" in e.value.message
    with pytest.raises(anthropic.OverloadedError) as e:
        client.messages.create(model="all-down", max_tokens=10, messages=ASK)
    assert e.value.status_code == 529


def test_stream_that_breaks_raises():
    text = []
    with pytest.raises(anthropic.APIError) as e:
        with client.messages.stream(model="breaks-mid-stream", max_tokens=100, messages=[{"role": "user", "content": "Hello"}]) as stream:
            for piece in stream.text_stream:
                text.append(piece)
    assert "incomplete" in str(e.value)
    assert text, "tokens before the break were delivered"


def test_fallback_from_anthropic_to_bedrock():
    before = upstream_calls("anthropic.claude-fake")
    raw = client.messages.with_raw_response.create(model="ant-then-bedrock", max_tokens=50, messages=[{"role": "user", "content": "Hello"}])
    msg = raw.parse()
    assert raw.headers["x-sluice-provider"] == "bed"
    assert msg.content[0].text.startswith('Simulated reply to "Hello":')
    assert upstream_calls("fail-503-bedrock") >= 1
    assert upstream_calls("anthropic.claude-fake") == before + 1


def test_count_tokens():
    body = {"system": [{"type": "text", "text": "Be brief."}], "messages": ASK, "tools": TOOLS}
    direct = anthropic.Anthropic(base_url=FAKE, api_key="k", max_retries=0).messages.count_tokens(model="claude-fake", **body)
    raw = client.messages.with_raw_response.count_tokens(model="ant-chat", **body)
    assert raw.parse().input_tokens == direct.input_tokens
    assert raw.headers["x-sluice-token-count"] == "exact"
    est = client.messages.with_raw_response.count_tokens(model="sluice-sim", **body)
    assert est.parse().input_tokens > 0 and est.headers["x-sluice-token-count"] == "estimated"
