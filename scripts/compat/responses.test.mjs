// The Responses API door (POST /v1/responses) with the official openai npm
// SDK's client.responses: streamed and not, the stream helper, a function
// tool round trip (over previous_response_id and with explicit input
// items), structured output, stored responses, errors and a stream that
// breaks mid-way, on the simulated model and through the OpenAI-compatible
// and Anthropic fakes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.SLUICE_URL;
assert.ok(base, 'SLUICE_URL must be set (scripts/compat.sh sets it)');
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'not-needed-locally', maxRetries: 0 });

const kinds = ['sluice-sim', 'oai-chat', 'ant-chat'];
const tools = [
  {
    type: 'function',
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
    strict: true,
  },
  {
    type: 'function',
    name: 'get_time',
    parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'], additionalProperties: false },
    strict: true,
  },
];
const ask = 'Use get_weather for Oslo and get_time for its time zone.';

// collect reads a raw event stream the way a careful client does and checks
// the order rules: sequence numbers count up from 0, every delta belongs to
// an item that was added, and the stream ends with one terminal event.
async function collect(stream) {
  const got = { types: [], text: '', deltas: 0, args: {}, items: new Map(), terminal: null, error: null };
  let seq = -1;
  for await (const ev of stream) {
    assert.equal(ev.sequence_number, seq + 1, `sequence_number after ${seq}`);
    seq = ev.sequence_number;
    assert.equal(got.terminal, null, `${ev.type} after the terminal event`);
    got.types.push(ev.type);
    switch (ev.type) {
      case 'response.output_item.added':
        assert.ok(!got.items.has(ev.output_index), 'each output index once');
        got.items.set(ev.output_index, ev.item);
        break;
      case 'response.output_text.delta':
        assert.ok(got.items.has(ev.output_index), 'a delta for an added item');
        got.text += ev.delta;
        got.deltas++;
        break;
      case 'response.function_call_arguments.delta':
        assert.equal(got.items.get(ev.output_index).type, 'function_call');
        got.args[ev.item_id] = (got.args[ev.item_id] ?? '') + ev.delta;
        break;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        got.terminal = ev;
        break;
      case 'error':
        got.error = ev;
        break;
    }
  }
  assert.deepEqual(got.types.slice(0, 2), ['response.created', 'response.in_progress']);
  assert.ok(got.terminal, 'a terminal event');
  return got;
}

function calls(response) {
  return response.output.filter((o) => o.type === 'function_call');
}

function checkCalls(list, where) {
  assert.deepEqual(list.map((c) => c.name), ['get_weather', 'get_time'], `${where}: two parallel calls`);
  assert.notEqual(list[0].call_id, list[1].call_id);
  const weather = JSON.parse(list[0].arguments);
  assert.equal(typeof weather.city, 'string', where);
  assert.ok(['celsius', 'fahrenheit'].includes(weather.unit), where);
  assert.equal(typeof JSON.parse(list[1].arguments).tz, 'string', where);
}

for (const model of kinds) {
  test(`${model}: responses.create, not streamed`, async () => {
    const { data: r, response } = await client.responses
      .create({ model, input: 'Hello from the Responses API', instructions: 'Be brief.', metadata: { ticket: 'T-1' } })
      .withResponse();
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.match(r.output_text, /Simulated reply/);
    assert.equal(r.instructions, 'Be brief.');
    assert.deepEqual(r.metadata, { ticket: 'T-1' });
    assert.ok(r.usage.output_tokens > 0 && r.usage.input_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    assert.equal(response.headers.get('x-request-id'), r.id);
    assert.match(r.id, /^resp_/);
  });

  test(`${model}: responses.create, streamed event by event`, async () => {
    const stream = await client.responses.create({ model, input: 'Hello from the Responses API', stream: true });
    const got = await collect(stream);
    assert.equal(got.terminal.type, 'response.completed');
    assert.ok(got.deltas > 1, 'text arrives in many deltas');
    assert.equal(got.text, got.terminal.response.output[0].content[0].text);
    for (const t of ['response.output_item.added', 'response.content_part.added', 'response.output_text.done',
      'response.content_part.done', 'response.output_item.done']) {
      assert.ok(got.types.includes(t), t);
    }
  });

  test(`${model}: the responses.stream helper`, async () => {
    const runner = client.responses.stream({ model, input: 'Hello from the helper' });
    let snapshot = '';
    runner.on('response.output_text.delta', (ev) => {
      snapshot = ev.snapshot;
    });
    const final = await runner.finalResponse();
    assert.equal(final.status, 'completed');
    // The helper's final response has no output_text convenience: read the item.
    const text = final.output[0].content[0].text;
    assert.match(text, /^Simulated reply to "Hello from the helper":/);
    assert.equal(snapshot, text);
  });

  test(`${model}: a function tool round trip over previous_response_id`, async () => {
    const first = await client.responses.create({ model, input: ask, tools });
    checkCalls(calls(first), 'first turn');
    const results = calls(first).map((c) => ({
      type: 'function_call_output', call_id: c.call_id, output: c.name === 'get_weather' ? '{"temp_c":18}' : '"14:05"',
    }));
    const second = await client.responses.create({ model, previous_response_id: first.id, input: results, tools });
    assert.equal(second.previous_response_id, first.id);
    assert.equal(second.status, 'completed');
    assert.equal(calls(second).length, 0);
    assert.ok(second.output_text.length > 0);
  });

  test(`${model}: a streamed function tool round trip with explicit input items, nothing stored`, async () => {
    const input = [{ role: 'user', content: ask }];
    const stream = await client.responses.create({ model, input, tools, stream: true, store: false });
    const got = await collect(stream);
    const first = got.terminal.response;
    checkCalls(calls(first), 'streamed first turn');
    for (const c of calls(first)) assert.equal(got.args[c.id], c.arguments, 'argument deltas add up');
    await assert.rejects(client.responses.retrieve(first.id), (err) => err instanceof OpenAI.NotFoundError);
    const results = calls(first).map((c) => ({ type: 'function_call_output', call_id: c.call_id, output: 'done' }));
    const second = await client.responses.create({ model, input: [...input, ...first.output, ...results], tools, store: false });
    assert.equal(second.status, 'completed');
    assert.ok(second.output_text.length > 0);
  });

  test(`${model}: text.format json_schema`, async () => {
    const r = await client.responses.create({
      model,
      input: 'Name a city and its population.',
      text: {
        format: {
          type: 'json_schema',
          name: 'city',
          strict: true,
          schema: {
            type: 'object',
            properties: { name: { type: 'string' }, population: { type: 'integer' } },
            required: ['name', 'population'],
            additionalProperties: false,
          },
        },
      },
    });
    const parsed = JSON.parse(r.output_text);
    assert.equal(typeof parsed.name, 'string');
    assert.ok(Number.isInteger(parsed.population));
    assert.equal(r.text.format.name, 'city');
  });
}

test('stored responses: retrieve and delete', async () => {
  const r = await client.responses.create({ model: 'sluice-sim', input: 'Keep this one' });
  const got = await client.responses.retrieve(r.id);
  assert.equal(got.id, r.id);
  assert.equal(got.output_text, r.output_text);
  const del = await client.responses.delete(r.id);
  assert.deepEqual(del, { id: r.id, object: 'response', deleted: true });
  await assert.rejects(client.responses.retrieve(r.id), (err) => err instanceof OpenAI.NotFoundError);
});

test('fallback before the first token is invisible', async () => {
  const { data, response } = await client.responses.create({ model: 'with-fallback', input: 'hi' }).withResponse();
  assert.equal(data.status, 'completed');
  assert.equal(response.headers.get('x-sluice-provider'), 'sim');
});

test('errors arrive as the SDK error classes', async () => {
  await assert.rejects(
    client.responses.create({ model: 'no-such-model', input: 'hi' }),
    (err) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found',
  );
  await assert.rejects(
    client.responses.create({ model: 'sluice-sim', input: 'hi', previous_response_id: 'resp_nope' }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'previous_response_id',
  );
  await assert.rejects(
    client.responses.create({ model: 'ant-chat', input: 'hi', tools: [{ type: 'web_search' }] }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'tools[0]' && /web_search/.test(err.message),
  );
  await assert.rejects(
    client.responses.create({ model: 'all-down', input: 'hi', stream: true }),
    (err) => err instanceof OpenAI.InternalServerError && err.status === 503,
  );
});

test('a stream that breaks mid-way ends with response.failed, never response.completed', async () => {
  const stream = await client.responses.create({ model: 'breaks-mid-stream', input: 'hi', stream: true });
  const got = await collect(stream);
  assert.ok(got.text.length > 0, 'tokens before the break were delivered');
  assert.equal(got.terminal.type, 'response.failed');
  assert.equal(got.terminal.response.status, 'failed');
  assert.equal(got.error.code, 'stream_interrupted');
  assert.ok(!got.types.includes('response.completed'));
});

test('oai-chat: web_search runs natively on the OpenAI-type upstream, events relayed', async () => {
  const stream = await client.responses.create({ model: 'oai-chat', input: 'Weather in Oslo?', tools: [{ type: 'web_search' }], stream: true });
  const got = await collect(stream);
  assert.equal(got.terminal.type, 'response.completed');
  for (const t of ['response.web_search_call.searching', 'response.output_text.annotation.added']) assert.ok(got.types.includes(t), t);
  const r = got.terminal.response;
  assert.deepEqual(r.output.map((o) => o.type), ['web_search_call', 'message']);
  assert.equal(r.output[1].content[0].annotations[0].type, 'url_citation');
  assert.equal(r.output[1].content[0].text, got.text);
  // Stored by sluice under its own id, and continued natively.
  assert.equal((await client.responses.retrieve(r.id)).id, r.id);
  const next = await client.responses.create({ model: 'oai-chat', previous_response_id: r.id, input: 'And tomorrow?', tools: [{ type: 'web_search' }] });
  assert.equal(next.status, 'completed');
  assert.equal(next.previous_response_id, r.id);
  assert.match(next.output_text, /^Simulated reply to "And tomorrow\?"/);
});
