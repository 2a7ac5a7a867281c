// Route features through the official OpenAI SDK: cache hits, blocked
// requests and redacted streams look to the SDK like any other response.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import OpenAI from 'openai';
import { startSluice } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
let server;
let client;

before(async () => {
  const bin = process.env.SLUICE_BIN;
  assert.ok(bin, 'SLUICE_BIN must name the stream binary');
  let url;
  ({ server, url } = startSluice(bin, path.join(here, 'features.yaml')));
  client = new OpenAI({ baseURL: (await url) + '/v1', apiKey: 'not-needed-locally', maxRetries: 0 });
});

after(() => server?.kill());

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a repeated deterministic request is a cache hit, streamed and not', async () => {
  const req = {
    model: 'cached', temperature: 0, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Cache this answer please' }],
  };
  const first = await client.chat.completions.create(req).withResponse();
  const miss = await collect(first.data);
  assert.equal(first.response.headers.get('x-sluice-cache'), 'miss');
  // The answer is stored in the background just after the response; poll
  // (a hang guard, not a timing assertion) until the store has it.
  let hit;
  let second;
  for (let i = 0; i < 100; i++) {
    second = await client.chat.completions.create(req).withResponse();
    hit = await collect(second.data);
    if (second.response.headers.get('x-sluice-cache') === 'hit') break;
    await sleep(20);
  }
  assert.equal(second.response.headers.get('x-sluice-cache'), 'hit');
  assert.equal(hit.text, miss.text);
  assert.equal(hit.finish, 'stop');
  assert.deepEqual(hit.usage, miss.usage);
  assert.ok(hit.chunks > 2, `a hit streams in chunks, got ${hit.chunks}`);

  const { data, response } = await client.chat.completions
    .create({ ...req, stream: false, stream_options: undefined })
    .withResponse();
  assert.equal(response.headers.get('x-sluice-cache'), 'hit');
  assert.equal(data.choices[0].message.content, miss.text);

  const sampled = await client.chat.completions.create({ ...req, temperature: 0.7 }).withResponse();
  await collect(sampled.data);
  assert.equal(sampled.response.headers.get('x-sluice-cache'), 'bypass');
});

test('a blocked request raises BadRequestError naming the rule', async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: 'guarded', stream: true, messages: [{ role: 'user', content: 'my api_key: sk-123' }],
    }),
    (err) => err instanceof OpenAI.BadRequestError && err.code === 'content_blocked' &&
      err.param === 'messages[0].content' && /secrets/.test(err.message),
  );
});

test('personal data is redacted from the stream', async () => {
  // The simulated model quotes the prompt's first words back.
  const messages = [{ role: 'user', content: 'bob.smith@example.com +1-555-123-4567 4111111111111111 please' }];
  const got = await collect(await client.chat.completions.create({ model: 'guarded', stream: true, messages }));
  assert.match(got.text, /^Simulated reply to "\[REDACTED_EMAIL\] \[REDACTED_PHONE\] \[REDACTED_CARD\] please":/);
  assert.doesNotMatch(got.text, /example\.com|4567|1111/);
  const resp = await client.chat.completions.create({ model: 'guarded', messages });
  assert.equal(resp.choices[0].message.content, got.text);
});

test('a shadowed route answers from its primary only', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'shadowed', stream: true, messages: [{ role: 'user', content: 'hello shadow' }] })
    .withResponse();
  const got = await collect(data);
  assert.equal(response.headers.get('x-sluice-provider'), 'sim');
  assert.match(got.text, /^Simulated reply to "hello shadow":/);
});
