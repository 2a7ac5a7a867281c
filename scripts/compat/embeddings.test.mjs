// /v1/embeddings through the official openai npm SDK, unchanged: float and
// base64 (the SDK's default, which it decodes itself), several inputs,
// dimensions, same-space fallback when the first target fails, and errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.SLUICE_URL;
assert.ok(base, 'SLUICE_URL must be set (scripts/compat.sh sets it)');
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'not-needed-locally', maxRetries: 0 });

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);

test('embeddings: float and base64 give the same unit vectors', async () => {
  const input = ['the river flows to the sea', 'the river flows to the ocean', 'quarterly tax deadline'];
  const asFloat = await client.embeddings.create({ model: 'sim-embed', input, encoding_format: 'float' });
  const asDefault = await client.embeddings.create({ model: 'sim-embed', input }); // the SDK asks for base64
  for (const res of [asFloat, asDefault]) {
    assert.equal(res.object, 'list');
    assert.equal(res.data.length, 3);
    assert.ok(res.usage.prompt_tokens > 0);
    assert.equal(res.usage.total_tokens, res.usage.prompt_tokens);
    res.data.forEach((d, i) => {
      assert.equal(d.index, i);
      assert.equal(d.object, 'embedding');
      assert.equal(d.embedding.length, 64);
      assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-5);
    });
  }
  // base64 carries the float32 values exactly; JSON floats print them in
  // the shortest form that reads back as the same float32.
  asFloat.data.forEach((d, i) => {
    asDefault.data[i].embedding.forEach((x, j) => assert.equal(Math.fround(d.embedding[j]), x));
  });
  const [a, b, c] = asFloat.data.map((d) => d.embedding);
  assert.ok(dot(a, b) > dot(a, c), 'texts that share words are closer');
});

test('embeddings: a single string, token arrays and dimensions', async () => {
  const one = await client.embeddings.create({ model: 'sim-embed', input: 'hello', encoding_format: 'float' });
  assert.equal(one.data.length, 1);
  const tokens = await client.embeddings.create({ model: 'sim-embed', input: [[1, 2, 3], [4, 5]], encoding_format: 'float' });
  assert.equal(tokens.data.length, 2);
  const short = await client.embeddings.create({ model: 'sim-embed', input: 'hello', dimensions: 16 });
  assert.equal(short.data[0].embedding.length, 16);
  assert.ok(Math.abs(norm(short.data[0].embedding) - 1) < 1e-5);
});

test('embeddings: many inputs are split into provider-sized calls', async () => {
  const input = Array.from({ length: 100 }, (_, i) => `document ${i}`);
  const res = await client.embeddings.create({ model: 'sim-embed', input });
  assert.equal(res.data.length, 100);
  const again = await client.embeddings.create({ model: 'sim-embed', input: 'document 42', encoding_format: 'float' });
  again.data[0].embedding.forEach((x, j) => assert.equal(Math.fround(x), res.data[42].embedding[j]));
});

test('embeddings: same-space fallback when the first target fails', async () => {
  const { data, response } = await client.embeddings
    .create({ model: 'embed-with-fallback', input: ['a', 'b'] })
    .withResponse();
  assert.equal(data.data.length, 2);
  assert.equal(response.headers.get('x-sluice-provider'), 'sim');
});

test('embeddings: errors are the SDK typed errors', async () => {
  await assert.rejects(client.embeddings.create({ model: 'no-such-model', input: 'x' }), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
  await assert.rejects(client.embeddings.create({ model: 'sim-embed', input: '' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.param, 'input');
    return true;
  });
});
