// Tool calls, structured output, logprobs, cached-token usage, typed errors
// and retry behaviour through sluice, with the official openai npm SDK, on
// every kind of upstream: the simulated model, an OpenAI-compatible fake
// and an Anthropic fake (both speaking their real wire formats).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.SLUICE_URL;
const fake = process.env.FAKE_URL;
assert.ok(base && fake, 'SLUICE_URL and FAKE_URL must be set (scripts/compat.sh sets them)');
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'not-needed-locally', maxRetries: 0 });
// A client as users have it: the SDK's default retries (2) on.
const retrying = new OpenAI({ baseURL: base + '/v1', apiKey: 'not-needed-locally' });

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather for a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
      },
    },
  },
  {
    type: 'function',
    function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } },
  },
];
const ask = [{ role: 'user', content: 'Use get_weather for Oslo and get_time for its time zone.' }];
const kinds = ['sluice-sim', 'oai-chat', 'ant-chat'];
const unique = (prefix) => `${prefix}-node-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

async function calls(model) {
  const res = await fetch(fake + '/_calls');
  return (await res.json())[model] ?? 0;
}

function checkCalls(toolCalls, where) {
  assert.equal(toolCalls.length, 2, `${where}: two parallel calls`);
  assert.deepEqual(toolCalls.map((c) => c.function.name), ['get_weather', 'get_time'], `${where}: names exactly once`);
  assert.notEqual(toolCalls[0].id, toolCalls[1].id, `${where}: distinct ids`);
  for (const c of toolCalls) {
    assert.ok(c.id && c.id.length < 64, `${where}: one id, not repeated: ${c.id}`);
    assert.equal(c.type, 'function');
    assert.equal(typeof JSON.parse(c.function.arguments), 'object', `${where}: arguments are JSON`);
  }
  const weather = JSON.parse(toolCalls[0].function.arguments);
  assert.equal(typeof weather.city, 'string');
  assert.ok(['celsius', 'fahrenheit'].includes(weather.unit));
}

for (const model of kinds) {
  test(`${model}: streamed parallel tool calls, fragments as the wire sends them`, async () => {
    const stream = await client.chat.completions.create({ model, messages: ask, tools, stream: true });
    const seen = new Map(); // index -> {ids, names, args}
    let finish;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.finish_reason) finish = choice.finish_reason;
      for (const tc of choice?.delta?.tool_calls ?? []) {
        const s = seen.get(tc.index) ?? { ids: 0, names: 0, args: '' };
        if (tc.id) s.ids++;
        if (tc.function?.name) s.names++;
        s.args += tc.function?.arguments ?? '';
        seen.set(tc.index, s);
      }
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(seen.size, 2);
    for (const [i, s] of seen) {
      assert.equal(s.ids, 1, `call ${i}: id sent once`);
      assert.equal(s.names, 1, `call ${i}: name sent once`);
      JSON.parse(s.args);
    }
  });

  test(`${model}: the stream helper assembles the calls, and the round trip completes`, async () => {
    const runner = client.chat.completions.stream({ model, messages: ask, tools });
    const first = await runner.finalChatCompletion();
    const msg = first.choices[0].message;
    checkCalls(msg.tool_calls, 'stream helper');
    const results = msg.tool_calls.map((c) => ({ role: 'tool', tool_call_id: c.id, content: c.function.name === 'get_weather' ? '18C' : '14:05' }));
    const second = await client.chat.completions.create({ model, messages: [...ask, msg, ...results], tools });
    assert.equal(second.choices[0].finish_reason, 'stop');
    assert.ok(second.choices[0].message.content.length > 0);
    assert.equal(second.choices[0].message.tool_calls, undefined);
  });

  test(`${model}: non-streamed parallel tool calls`, async () => {
    const resp = await client.chat.completions.create({ model, messages: ask, tools });
    assert.equal(resp.choices[0].finish_reason, 'tool_calls');
    assert.equal(resp.choices[0].message.content, null);
    checkCalls(resp.choices[0].message.tool_calls, 'non-streamed');
  });
}

for (const model of ['oai-chat', 'ant-chat']) {
  test(`${model}: parse() with a JSON schema`, async () => {
    const completion = await client.chat.completions.parse({
      model,
      messages: [{ role: 'user', content: 'Name a city and its population.' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'city',
          strict: true,
          schema: {
            type: 'object',
            properties: { name: { type: 'string' }, population: { type: 'integer' }, capital: { type: 'boolean' } },
            required: ['name', 'population', 'capital'],
            additionalProperties: false,
          },
        },
      },
    });
    const parsed = completion.choices[0].message.parsed;
    assert.equal(typeof parsed.name, 'string');
    assert.ok(Number.isInteger(parsed.population));
    assert.equal(typeof parsed.capital, 'boolean');
    assert.equal(completion.choices[0].finish_reason, 'stop');
  });
}

test('logprobs reach an OpenAI-compatible upstream and come back, streamed and not', async () => {
  const stream = await client.chat.completions.create({ model: 'oai-chat', messages: ask.slice(0, 0).concat([{ role: 'user', content: 'hi' }]), logprobs: true, top_logprobs: 2, stream: true });
  let tokens = 0;
  for await (const chunk of stream) {
    for (const lp of chunk.choices[0]?.logprobs?.content ?? []) {
      tokens++;
      assert.equal(lp.top_logprobs.length, 2);
      assert.equal(typeof lp.logprob, 'number');
    }
  }
  assert.ok(tokens > 0, 'streamed logprobs');
  const resp = await client.chat.completions.create({ model: 'oai-chat', messages: [{ role: 'user', content: 'hi' }], logprobs: true, top_logprobs: 1 });
  assert.ok(resp.choices[0].logprobs.content.length >= tokens, 'non-streamed logprobs gathered from every chunk');
  assert.equal(resp.system_fingerprint, 'fp_fake');
});

test('logprobs cannot be expressed to Anthropic: a 400 naming the field', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'ant-chat', messages: [{ role: 'user', content: 'hi' }], logprobs: true }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'logprobs' && err.code === 'unsupported_parameter',
  );
});

test('cached prompt tokens are reported, from either upstream kind', async () => {
  for (const model of ['oai-chat', 'ant-chat']) {
    const resp = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'a long shared prefix '.repeat(20) }] });
    assert.ok(resp.usage.prompt_tokens_details.cached_tokens > 0, `${model}: cached_tokens`);
    assert.ok(resp.usage.prompt_tokens >= resp.usage.prompt_tokens_details.cached_tokens);
    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    let usage;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    assert.ok(usage.prompt_tokens_details.cached_tokens > 0, `${model}: streamed cached_tokens`);
  }
  const ant = await client.chat.completions.create({ model: 'ant-chat', messages: [{ role: 'user', content: 'hi' }] });
  assert.ok(ant.usage.cache_creation_input_tokens > 0, 'Anthropic cache writes');
});

test("an upstream's 400 arrives as BadRequestError with its code and param", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'oai/' + unique('fail-400'), messages: [{ role: 'user', content: 'hi' }] }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'temperature' && err.code === 'invalid_value',
  );
});

test('retries compose: a 503 that sluice retried is not retried again by the SDK', async () => {
  const model = unique('fail-503');
  const start = Date.now();
  await assert.rejects(
    retrying.chat.completions.create({ model: 'oai/' + model, messages: [{ role: 'user', content: 'hi' }] }),
    (err) => err instanceof OpenAI.InternalServerError && err.status === 503 && err.headers.get('x-should-retry') === 'false',
  );
  // sluice: the first call and one retry; the SDK: none of its own.
  assert.equal(await calls(model), 2);
  assert.ok(Date.now() - start < 30000, 'a hang guard, not a timing assertion');
});

test('retries compose: every target rate limited is a 429, not retried again', async () => {
  const model = unique('fail-429');
  await assert.rejects(
    retrying.chat.completions.create({ model: 'oai/' + model, messages: [{ role: 'user', content: 'hi' }] }),
    (err) => err instanceof OpenAI.RateLimitError && Number(err.headers.get('retry-after')) <= 5,
  );
  assert.equal(await calls(model), 2);
});

test('an open breaker fails fast: no SDK retries, no upstream calls', async () => {
  const model = unique('fail-503');
  await assert.rejects(retrying.chat.completions.create({ model: 'oai/' + model, messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(await calls(model), 2); // two failures: the breaker opens
  await assert.rejects(
    retrying.chat.completions.create({ model: 'oai/' + model, messages: [{ role: 'user', content: 'hi' }] }),
    (err) => err.status === 503 && err.headers.get('x-should-retry') === 'false' && Number(err.headers.get('retry-after')) <= 5,
  );
  assert.equal(await calls(model), 2);
});

test('an Anthropic target that fails falls back to an OpenAI-compatible one, tools and all', async () => {
  const { data, response } = await client.chat.completions.create({ model: 'ant-then-oai', messages: ask, tools }).withResponse();
  assert.equal(response.headers.get('x-sluice-provider'), 'oai');
  checkCalls(data.choices[0].message.tool_calls, 'after fallback');
});

test('CORS preflight from an allowed origin', async () => {
  const res = await fetch(base + '/v1/chat/completions', {
    method: 'OPTIONS',
    headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' },
  });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com');
});
