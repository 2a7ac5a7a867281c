"""The Responses API door (POST /v1/responses) with the official OpenAI
Python SDK's client.responses: create streamed and not, the stream helper
(which checks item identities and ordering strictly), a function tool round
trip over previous_response_id and with explicit input items, text.format
json_schema and responses.parse, stored responses, errors, and a stream
that breaks mid-way. Models: sluice-sim (simulated), oai-chat (through the
OpenAI-compatible fake), ant-chat (through the Anthropic fake).
"""

import json
import os

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

BASE = os.environ["SLUICE_URL"] + "/v1"
client = OpenAI(base_url=BASE, api_key="not-needed-locally", max_retries=0)
KINDS = ["sluice-sim", "oai-chat", "ant-chat"]

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    },
    {
        "type": "function",
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"], "additionalProperties": False},
        "strict": True,
    },
]
ASK = "Use get_weather for Oslo and get_time for its time zone."


def function_calls(response):
    return [o for o in response.output if o.type == "function_call"]


def check_calls(calls):
    assert [c.name for c in calls] == ["get_weather", "get_time"], calls
    assert calls[0].call_id != calls[1].call_id
    weather = json.loads(calls[0].arguments)
    assert isinstance(weather["city"], str) and weather["unit"] in ("celsius", "fahrenheit")
    assert isinstance(json.loads(calls[1].arguments)["tz"], str)


def read_events(stream):
    """Reads a raw event stream, checking sequence numbers and order."""
    events = []
    for ev in stream:
        assert ev.sequence_number == len(events), (ev.type, ev.sequence_number, len(events))
        assert not events or events[-1].type not in ("response.completed", "response.failed", "response.incomplete")
        events.append(ev)
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    return events


@pytest.mark.parametrize("model", KINDS)
def test_create_not_streamed(model):
    raw = client.responses.with_raw_response.create(model=model, input="Hello from Python", instructions="Be brief.")
    r = raw.parse()
    assert r.status == "completed" and r.object == "response"
    assert r.output_text.startswith('Simulated reply to "Hello from Python":')
    assert raw.headers["x-request-id"] == r.id
    assert r.usage.output_tokens > 0 and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.usage.input_tokens_details.cached_tokens >= 0 and r.usage.output_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize("model", KINDS)
def test_create_streamed(model):
    events = read_events(client.responses.create(model=model, input="Hello from Python", stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == text
    done = [e for e in events if e.type == "response.output_text.done"]
    assert len(done) == 1 and done[0].text == text


@pytest.mark.parametrize("model", KINDS)
def test_stream_helper(model):
    # The helper raises on a lifecycle id that changes, an output index
    # added twice, a done item unlike the added one, or an item never done.
    with client.responses.stream(model=model, input=ASK, tools=TOOLS) as stream:
        deltas = 0
        for ev in stream:
            if ev.type == "response.function_call_arguments.delta":
                deltas += 1
        final = stream.get_final_response()
    check_calls(function_calls(final))
    assert deltas >= 2


@pytest.mark.parametrize("model", KINDS)
def test_function_tool_round_trip_over_previous_response_id(model):
    first = client.responses.create(model=model, input=ASK, tools=TOOLS)
    calls = function_calls(first)
    check_calls(calls)
    outputs = [{"type": "function_call_output", "call_id": c.call_id, "output": json.dumps({"ok": c.name})} for c in calls]
    with client.responses.stream(model=model, previous_response_id=first.id, input=outputs, tools=TOOLS) as stream:
        second = stream.get_final_response()
    assert second.previous_response_id == first.id
    assert second.status == "completed" and not function_calls(second)
    assert second.output_text


@pytest.mark.parametrize("model", KINDS)
def test_function_tool_round_trip_with_input_items(model):
    conversation = [{"role": "user", "content": ASK}]
    first = client.responses.create(model=model, input=conversation, tools=TOOLS, store=False)
    check_calls(function_calls(first))
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    conversation += [item.model_dump(exclude_none=True) for item in first.output]
    conversation += [{"type": "function_call_output", "call_id": c.call_id, "output": "done"} for c in function_calls(first)]
    second = client.responses.create(model=model, input=conversation, tools=TOOLS, store=False)
    assert second.status == "completed" and second.output_text


class City(BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("model", KINDS)
def test_parse_with_a_pydantic_schema(model):
    r = client.responses.parse(model=model, input="Name a city and its population.", text_format=City)
    assert isinstance(r.output_parsed, City)
    assert isinstance(r.output_parsed.population, int)


@pytest.mark.parametrize("model", KINDS)
def test_text_format_json_schema_streamed(model):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": False}
    with client.responses.stream(
        model=model,
        input="Name a city.",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
    ) as stream:
        final = stream.get_final_response()
    assert isinstance(json.loads(final.output_text)["name"], str)


def test_retrieve_and_delete():
    r = client.responses.create(model="sluice-sim", input="Keep this one", metadata={"ticket": "T-9"})
    got = client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text and got.metadata == {"ticket": "T-9"}
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_errors():
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="no-such-model", input="hi")
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="sluice-sim", input="hi", previous_response_id="resp_nope")
    assert e.value.param == "previous_response_id"
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="ant-chat", input="hi", tools=[{"type": "code_interpreter", "container": {"type": "auto"}}])
    assert e.value.param == "tools[0]" and "code_interpreter" in e.value.message
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="all-down", input="hi")


def test_a_stream_that_breaks_mid_way_fails_explicitly():
    events = read_events(client.responses.create(model="breaks-mid-stream", input="hi", stream=True))
    types = [e.type for e in events]
    assert "response.output_text.delta" in types, "tokens before the break were delivered"
    assert types[-2:] == ["error", "response.failed"] and "response.completed" not in types
    assert events[-1].response.status == "failed" and events[-2].code == "stream_interrupted"
    with client.responses.stream(model="breaks-mid-stream", input="hi") as stream:
        with pytest.raises(RuntimeError, match="response.completed"):
            stream.get_final_response()


def test_web_search_runs_natively_on_the_openai_type_upstream():
    with client.responses.stream(model="oai-chat", input="Weather in Oslo?", tools=[{"type": "web_search"}]) as stream:
        types = [ev.type for ev in stream]
        final = stream.get_final_response()
    assert "response.web_search_call.searching" in types and "response.output_text.annotation.added" in types
    assert [o.type for o in final.output] == ["web_search_call", "message"]
    assert final.output[1].content[0].annotations[0].type == "url_citation"
    follow = client.responses.create(model="oai-chat", previous_response_id=final.id, input="Thanks")
    assert follow.status == "completed" and follow.previous_response_id == final.id
