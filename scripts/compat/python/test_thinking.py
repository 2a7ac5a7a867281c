"""Claude's extended thinking in a tool loop, through every door, with the
official OpenAI and Anthropic Python SDKs.

Claude answers a tool call while thinking with signed thinking blocks, and
refuses the next turn unless the assistant turn sent back leads with them
(the fakes enforce it as Claude does, and check the signatures). Models:
ant-chat (the Anthropic fake) and ant-then-bedrock (a failing Anthropic
target, then Claude on the Bedrock ConverseStream fake).
"""

import os

import anthropic
import openai
import pytest
from openai import OpenAI

SLUICE = os.environ["SLUICE_URL"]
client = OpenAI(base_url=SLUICE + "/v1", api_key="not-needed-locally", max_retries=0)
ant = anthropic.Anthropic(base_url=SLUICE, api_key="not-needed-locally", max_retries=0)

TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    }
]
ASK = [{"role": "user", "content": "Use get_weather for Paris."}]
# Anthropic's documented trigger for a redacted_thinking block.
REDACT = "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253"
MODELS = ["ant-chat", "ant-then-bedrock"]
REFUSED = "Expected `thinking` or `redacted_thinking`, but found `tool_use`"


def first_turn(model, messages, streamed):
    if streamed:
        # The SDK's stream helper accumulates the deltas into the message.
        with client.chat.completions.stream(model=model, messages=messages, tools=TOOLS, reasoning_effort="low") as stream:
            for _ in stream:
                pass
            return stream.get_final_completion().choices[0].message
    return client.chat.completions.create(model=model, messages=messages, tools=TOOLS, reasoning_effort="low").choices[0].message


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("streamed", [False, True])
def test_chat_tool_loop_sends_the_message_back_as_received(model, streamed):
    msg = first_turn(model, ASK, streamed)
    assert msg.tool_calls and msg.tool_calls[0].function.name == "get_weather"
    sent_back = msg.model_dump()
    blocks = sent_back["thinking_blocks"]
    assert len(blocks) == 1 and blocks[0]["type"] == "thinking" and blocks[0]["signature"], blocks
    assert blocks[0]["thinking"] == sent_back["reasoning_content"] and "Paris" in blocks[0]["thinking"]

    result = {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny"}
    second = client.chat.completions.create(model=model, messages=ASK + [sent_back, result], tools=TOOLS, reasoning_effort="low")
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content

    # Without its thinking blocks the turn is refused, as Claude refuses it.
    bare = {k: v for k, v in sent_back.items() if k != "thinking_blocks"}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, messages=ASK + [bare, result], tools=TOOLS, reasoning_effort="low")
    assert REFUSED in e.value.message


def test_chat_redacted_thinking_round_trip():
    ask = [{"role": "user", "content": "Use get_weather for Paris. " + REDACT}]
    msg = first_turn("ant-chat", ask, False)
    blocks = msg.model_dump()["thinking_blocks"]
    assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking"] and blocks[1]["data"], blocks
    result = {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny"}
    second = client.chat.completions.create(model="ant-chat", messages=ask + [msg.model_dump(), result], tools=TOOLS, reasoning_effort="low")
    assert second.choices[0].message.content


@pytest.mark.parametrize("model", MODELS)
def test_messages_tool_loop(model):
    tools = [{"name": "get_weather", "input_schema": TOOLS[0]["function"]["parameters"]}]
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = ant.messages.create(model=model, max_tokens=2000, thinking=thinking, tools=tools, messages=ASK)
    assert [b.type for b in first.content] == ["thinking", "tool_use"] and first.content[0].signature
    use = first.content[1]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}
    second = ant.messages.create(
        model=model, max_tokens=2000, thinking=thinking, tools=tools, messages=ASK + [{"role": "assistant", "content": first.content}, result]
    )
    assert second.stop_reason == "end_turn" and second.content[-1].text
    with pytest.raises(anthropic.BadRequestError) as e:
        ant.messages.create(model=model, max_tokens=2000, thinking=thinking, tools=tools, messages=ASK + [{"role": "assistant", "content": [use]}, result])
    assert REFUSED in e.value.message


@pytest.mark.parametrize("model", MODELS)
def test_responses_tool_loop(model):
    tools = [{"type": "function", "name": "get_weather", "parameters": TOOLS[0]["function"]["parameters"]}]
    first = client.responses.create(model=model, input=ASK, tools=tools, reasoning={"effort": "low"})
    kinds = [o.type for o in first.output]
    assert kinds == ["reasoning", "function_call"], kinds
    assert first.output[0].encrypted_content and first.output[0].content[0].text
    call = first.output[1]
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
    # The output items sent back as input, and the stored response continued.
    second = client.responses.create(
        model=model, input=ASK + [o.model_dump(exclude_none=True) for o in first.output] + [output], tools=tools, reasoning={"effort": "low"}
    )
    assert second.status == "completed" and second.output_text
    third = client.responses.create(model=model, previous_response_id=first.id, input=[output], tools=tools, reasoning={"effort": "low"})
    assert third.status == "completed" and third.output_text
