// The official OpenAI SDK must work against sluice unchanged: streaming,
// usage, non-streamed calls, errors and headers, on the simulated models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

// compat.sh starts sluice (and the fake upstreams) and names it here.
const base = process.env.SLUICE_URL;
assert.ok(base, 'SLUICE_URL must name the running gateway (scripts/compat.sh sets it)');
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'not-needed-locally', maxRetries: 0 });

const messages = [{ role: 'user', content: 'Hello from the official SDK' }];

async function collect(stream) {
  let text = '';
  let usage;
  let finish;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    const choice = chunk.choices[0];
    if (choice?.delta?.content) text += choice.delta.content;
    if (choice?.finish_reason) finish = choice.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  return { text, usage, finish, chunks };
}

test('streams a completion token by token', async () => {
  const stream = await client.chat.completions.create({
    model: 'sluice-sim', messages, stream: true, stream_options: { include_usage: true },
  });
  const got = await collect(stream);
  assert.match(got.text, /^Simulated reply to "Hello from the official":/);
  assert.ok(got.chunks >= 24, `expected a chunk per token, got ${got.chunks}`);
  assert.equal(got.finish, 'stop');
  assert.equal(got.usage.completion_tokens, 24);
  assert.equal(got.usage.total_tokens, got.usage.prompt_tokens + 24);
});

test('non-streamed completion matches the streamed text', async () => {
  const stream = await client.chat.completions.create({ model: 'sluice-sim', messages, stream: true });
  const streamed = await collect(stream);
  const resp = await client.chat.completions.create({ model: 'sluice-sim', messages });
  assert.equal(resp.object, 'chat.completion');
  assert.equal(resp.choices[0].message.role, 'assistant');
  assert.equal(resp.choices[0].message.content, streamed.text);
  assert.equal(resp.usage.completion_tokens, 24);
});

test('the chat.completions.stream helper assembles the message', async () => {
  const runner = client.chat.completions.stream({ model: 'sluice-sim', messages });
  const final = await runner.finalChatCompletion();
  assert.match(final.choices[0].message.content, /^Simulated reply/);
});

test('fallback is invisible to the client and named in headers', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'with-fallback', messages, stream: true })
    .withResponse();
  const got = await collect(data);
  assert.match(got.text, /^Simulated reply/);
  assert.equal(response.headers.get('x-sluice-provider'), 'sim');
  assert.match(response.headers.get('x-request-id'), /^chatcmpl-/);
});

test('errors arrive as the SDK error classes', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages }),
    (err) => err instanceof OpenAI.NotFoundError && err.status === 404 && err.code === 'model_not_found',
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'sluice-sim', messages: [] }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'messages',
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'all-down', messages, stream: true }),
    (err) => err instanceof OpenAI.InternalServerError && err.status === 503,
  );
});

test('a stream that breaks mid-way raises instead of ending quietly', async () => {
  const stream = await client.chat.completions.create({ model: 'breaks-mid-stream', messages, stream: true });
  let text = '';
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    })(),
    (err) => err instanceof OpenAI.APIError && /incomplete/.test(err.message),
  );
  assert.ok(text.length > 0, 'tokens before the break were delivered');
});

test('models are listed', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['all-down', 'ant-chat', 'ant-then-bedrock', 'ant-then-oai', 'breaks-mid-stream', 'embed-with-fallback', 'oai-chat', 'sim-embed',
    'sluice-sim', 'with-fallback']);
});
