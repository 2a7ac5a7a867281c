// Claude's extended thinking in a tool loop through sluice, with the
// official openai and @anthropic-ai/sdk npm packages. Claude answers a tool
// call while thinking with signed thinking blocks and refuses the next turn
// unless the assistant turn sent back leads with them; the fakes enforce it
// as Claude does (signatures checked). ant-chat is the Anthropic fake;
// ant-then-bedrock fails over to Claude on the Bedrock fake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const base = process.env.SLUICE_URL;
assert.ok(base, 'SLUICE_URL must be set (scripts/compat.sh sets it)');
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'not-needed-locally', maxRetries: 0 });
const ant = new Anthropic({ baseURL: base, apiKey: 'not-needed-locally', maxRetries: 0 });

const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
const tools = [{ type: 'function', function: { name: 'get_weather', parameters } }];
const ask = [{ role: 'user', content: 'Use get_weather for Paris.' }];
const refused = 'Expected `thinking` or `redacted_thinking`, but found `tool_use`';

function checkBlocks(msg, where) {
  assert.ok(msg.tool_calls?.length === 1, `${where}: one tool call`);
  const blocks = msg.thinking_blocks;
  assert.ok(Array.isArray(blocks) && blocks.length === 1, `${where}: ${JSON.stringify(msg)}`);
  assert.equal(blocks[0].type, 'thinking');
  assert.ok(blocks[0].signature, `${where}: signed`);
  assert.match(blocks[0].thinking, /Paris/);
}

async function secondTurn(model, assistant, toolCallId) {
  const result = { role: 'tool', tool_call_id: toolCallId, content: 'sunny' };
  return client.chat.completions.create({ model, messages: [...ask, assistant, result], tools, reasoning_effort: 'low' });
}

for (const model of ['ant-chat', 'ant-then-bedrock']) {
  test(`${model}: a thinking tool loop continues with the message sent back as received`, async () => {
    const first = await client.chat.completions.create({ model, messages: ask, tools, reasoning_effort: 'low' });
    const msg = first.choices[0].message;
    checkBlocks(msg, 'non-streamed');
    assert.equal(msg.reasoning_content, msg.thinking_blocks[0].thinking);
    const second = await secondTurn(model, msg, msg.tool_calls[0].id);
    assert.equal(second.choices[0].finish_reason, 'stop');
    assert.ok(second.choices[0].message.content);

    // Without the blocks the turn is refused, as Claude refuses it.
    const { thinking_blocks: _, ...bare } = msg;
    await assert.rejects(secondTurn(model, bare, msg.tool_calls[0].id), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.ok(err.message.includes(refused), err.message);
      return true;
    });
  });

  test(`${model}: streamed, the stream helper's final message carries the blocks`, async () => {
    const runner = client.chat.completions.stream({ model, messages: ask, tools, reasoning_effort: 'low' });
    const msg = (await runner.finalChatCompletion()).choices[0].message;
    checkBlocks(msg, 'stream helper');
    const second = await secondTurn(model, msg, msg.tool_calls[0].id);
    assert.ok(second.choices[0].message.content);
  });

  test(`${model}: streamed chunks joined by index give the blocks`, async () => {
    const stream = await client.chat.completions.create({ model, messages: ask, tools, reasoning_effort: 'low', stream: true });
    const blocks = [];
    let reasoning = '';
    const calls = [];
    for await (const chunk of stream) {
      const d = chunk.choices[0]?.delta ?? {};
      reasoning += d.reasoning_content ?? '';
      for (const b of d.thinking_blocks ?? []) {
        const { index, ...rest } = b;
        blocks[index] = { ...(blocks[index] ?? {}), ...rest };
      }
      for (const tc of d.tool_calls ?? []) {
        calls[tc.index] = { id: tc.id ?? calls[tc.index]?.id, type: 'function',
          function: { name: tc.function?.name ?? calls[tc.index]?.function.name, arguments: (calls[tc.index]?.function.arguments ?? '') + (tc.function?.arguments ?? '') } };
      }
    }
    assert.equal(blocks.length, 1);
    assert.equal(blocks[0].thinking, reasoning, 'the block repeats the streamed reasoning whole');
    const second = await secondTurn(model, { role: 'assistant', content: null, tool_calls: calls, thinking_blocks: blocks }, calls[0].id);
    assert.ok(second.choices[0].message.content);
  });

  test(`${model}: the Messages door's tool loop while thinking`, async () => {
    const antTools = [{ name: 'get_weather', input_schema: parameters }];
    const thinking = { type: 'enabled', budget_tokens: 1024 };
    const first = await ant.messages.create({ model, max_tokens: 2000, thinking, tools: antTools, messages: ask });
    assert.deepEqual(first.content.map((b) => b.type), ['thinking', 'tool_use']);
    const use = first.content[1];
    const result = { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] };
    const second = await ant.messages.create({ model, max_tokens: 2000, thinking, tools: antTools,
      messages: [...ask, { role: 'assistant', content: first.content }, result] });
    assert.equal(second.stop_reason, 'end_turn');
    await assert.rejects(
      ant.messages.create({ model, max_tokens: 2000, thinking, tools: antTools, messages: [...ask, { role: 'assistant', content: [use] }, result] }),
      (err) => err instanceof Anthropic.BadRequestError && err.message.includes(refused),
    );
  });
}
