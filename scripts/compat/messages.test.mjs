// The official Anthropic SDK (@anthropic-ai/sdk) against sluice's Messages
// door, unchanged: streaming, parallel tool use round trips, token
// counting, typed errors, a stream that breaks, and fallback from Anthropic
// to Claude on Bedrock. Every kind of upstream: the simulated model, an
// Anthropic fake (served natively), an OpenAI-compatible fake (translated)
// and a Bedrock ConverseStream fake, all speaking their real wire formats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

const base = process.env.SLUICE_URL;
const fake = process.env.FAKE_URL;
assert.ok(base && fake, 'SLUICE_URL and FAKE_URL must be set (scripts/compat.sh sets them)');
const client = new Anthropic({ baseURL: base, apiKey: 'not-needed-locally', maxRetries: 0 });

const tools = [
  {
    name: 'get_weather',
    description: 'Weather for a city',
    input_schema: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
    },
  },
  { name: 'get_time', input_schema: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } },
];
const ask = [{ role: 'user', content: 'Use get_weather for Oslo and get_time for its time zone.' }];
const kinds = ['sluice-sim', 'ant-chat', 'oai-chat'];

async function calls(model) {
  const res = await fetch(fake + '/_calls');
  return (await res.json())[model] ?? 0;
}

for (const model of kinds) {
  test(`${model}: streams text event by event`, async () => {
    const stream = client.messages.stream({
      model, max_tokens: 100, messages: [{ role: 'user', content: 'Hello from the Anthropic SDK' }],
    });
    let text = '';
    let deltas = 0;
    stream.on('text', (t) => { text += t; deltas++; });
    const msg = await stream.finalMessage();
    assert.match(text, /^Simulated reply to "Hello from the Anthropic":/);
    assert.ok(deltas >= 12, `a delta per token, got ${deltas}`);
    assert.equal(msg.content.length, 1);
    assert.equal(msg.content[0].type, 'text');
    assert.equal(msg.content[0].text, text);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.ok(msg.usage.output_tokens >= 12 && msg.usage.input_tokens > 0, JSON.stringify(msg.usage));

    const whole = await client.messages.create({
      model, max_tokens: 100, messages: [{ role: 'user', content: 'Hello from the Anthropic SDK' }],
    });
    assert.equal(whole.type, 'message');
    assert.equal(whole.content[0].text, text, 'non-streamed matches streamed');
    // message_start has sluice's estimate; message_delta's counts (the
    // upstream's, cache reads included) are what the SDK keeps.
    assert.deepEqual(msg.usage, whole.usage);
    if (model === 'ant-chat') assert.ok(msg.usage.cache_read_input_tokens > 0, JSON.stringify(msg.usage));
  });

  test(`${model}: two parallel tool calls and the round trip`, async () => {
    const stream = client.messages.stream({ model, max_tokens: 200, messages: ask, tools });
    const partialJSON = new Map(); // block index -> number of input_json_delta events
    stream.on('streamEvent', (ev) => {
      if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') {
        partialJSON.set(ev.index, (partialJSON.get(ev.index) ?? 0) + 1);
      }
    });
    const msg = await stream.finalMessage();
    assert.equal(msg.stop_reason, 'tool_use');
    const uses = msg.content.filter((b) => b.type === 'tool_use');
    assert.deepEqual(uses.map((u) => u.name), ['get_weather', 'get_time']);
    assert.notEqual(uses[0].id, uses[1].id);
    assert.equal(typeof uses[0].input.city, 'string');
    assert.ok(['celsius', 'fahrenheit'].includes(uses[0].input.unit));
    assert.equal(typeof uses[1].input.tz, 'string');
    assert.ok([...partialJSON.values()].some((n) => n > 1), 'arguments arrive over several deltas');

    const results = uses.map((u) => ({ type: 'tool_result', tool_use_id: u.id, content: u.name === 'get_weather' ? '18C' : '14:05' }));
    const second = await client.messages.create({
      model, max_tokens: 200, tools,
      messages: [...ask, { role: 'assistant', content: msg.content }, { role: 'user', content: results }],
    });
    assert.equal(second.stop_reason, 'end_turn');
    assert.equal(second.content[0].type, 'text');
    assert.ok(second.content[0].text.length > 0);
  });
}

test('typed errors: unknown model, a bad field, every target down', async () => {
  await assert.rejects(
    client.messages.create({ model: 'no-such-model', max_tokens: 10, messages: ask }),
    (err) => err instanceof Anthropic.NotFoundError && err.status === 404 && err.error?.error?.type === 'not_found_error',
  );
  await assert.rejects(
    client.messages.create({ model: 'sluice-sim', max_tokens: 10, temperature: 1.5, messages: ask }),
    (err) => err instanceof Anthropic.BadRequestError && /temperature/.test(err.message),
  );
  await assert.rejects(
    client.messages.create({ model: 'all-down', max_tokens: 10, messages: ask, stream: true }),
    (err) => err instanceof Anthropic.OverloadedError && err.status === 529 && err.error?.error?.type === 'overloaded_error',
  );
});

test('a stream that breaks mid-way raises instead of ending quietly', async () => {
  const stream = await client.messages.create({
    model: 'breaks-mid-stream', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'Hello' }],
  });
  let text = '';
  await assert.rejects(
    (async () => {
      for await (const ev of stream) {
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      }
    })(),
    (err) => err instanceof Anthropic.APIError && /incomplete/.test(err.message),
  );
  assert.ok(text.length > 0, 'tokens before the break were delivered');
});

test('a failing Anthropic target falls back to Claude on Bedrock', async () => {
  const before = await calls('anthropic.claude-fake');
  const { data, response } = await client.messages
    .create({ model: 'ant-then-bedrock', max_tokens: 200, messages: ask, tools })
    .withResponse();
  assert.equal(response.headers.get('x-sluice-provider'), 'bed');
  assert.equal(data.stop_reason, 'tool_use');
  assert.deepEqual(data.content.filter((b) => b.type === 'tool_use').map((b) => b.name), ['get_weather', 'get_time']);
  assert.ok((await calls('fail-503-bedrock')) >= 1, 'the Anthropic target was tried (until its breaker opened)');
  assert.equal(await calls('anthropic.claude-fake'), before + 1);

  const stream = client.messages.stream({ model: 'ant-then-bedrock', max_tokens: 50, messages: [{ role: 'user', content: 'Hello' }] });
  const msg = await stream.finalMessage();
  assert.match(msg.content[0].text, /^Simulated reply to "Hello":/);
});

test('count_tokens: exact from an Anthropic target, estimated otherwise', async () => {
  const body = { system: [{ type: 'text', text: 'Be brief.' }], messages: ask, tools };
  const direct = await new Anthropic({ baseURL: fake, apiKey: 'k', maxRetries: 0 }).messages.countTokens({ model: 'claude-fake', ...body });
  const { data, response } = await client.messages.countTokens({ model: 'ant-chat', ...body }).withResponse();
  assert.equal(data.input_tokens, direct.input_tokens, 'sluice forwarded the body the upstream counts');
  assert.equal(response.headers.get('x-sluice-token-count'), 'exact');
  const est = await client.messages.countTokens({ model: 'sluice-sim', ...body }).withResponse();
  assert.ok(est.data.input_tokens > 0);
  assert.equal(est.response.headers.get('x-sluice-token-count'), 'estimated');
});
