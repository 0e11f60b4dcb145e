// The real `openai` npm package against Switchyard's OpenAI-compatible door (run by
// tests/clients/test_clients_openai.py with the live stack's address and keys).
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";

const baseURL = process.env.SWITCHYARD_OPENAI_BASE_URL;
const apiKey = process.env.SWITCHYARD_API_KEY;
const brokeKey = process.env.SWITCHYARD_BROKE_API_KEY;
const traceparent = process.env.SWITCHYARD_TEST_TRACEPARENT;
const messages = [{ role: "user", content: "Say hello in three words." }];

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

test("unary: text, usage, decision and cost", async () => {
  const reply = await client.chat.completions.create(
    { model: "switchyard/auto", messages, max_tokens: 8 },
    { headers: { traceparent } },
  );
  assert.ok(reply.choices[0].message.content.length > 0);
  assert.ok(reply.usage.completion_tokens > 0 && reply.usage.completion_tokens <= 8);
  assert.ok(["local-general", "frontier-mini"].includes(reply.switchyard.decision.target));
  assert.ok(reply.switchyard.total_cost_usd > 0);
  assert.equal(reply.id, `chatcmpl-${reply.switchyard.request_id}`);
});

test("a target name forces it, through the frontier proxy", async () => {
  const reply = await client.chat.completions.create({
    model: "frontier-mini",
    messages,
    max_tokens: 8,
  });
  assert.equal(reply.switchyard.decision.reason, "FORCED");
  assert.equal(reply.switchyard.decision.target, "frontier-mini");
  assert.ok(reply.switchyard.hops.some((h) => h.kind === "GENERATE" && h.service === "frontier-proxy"));
});

test("stream: decision first, deltas, usage and cost last", async () => {
  const stream = await client.chat.completions.create({
    model: "frontier-mini",
    messages,
    max_tokens: 8,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks[0].switchyard.decision.target, "frontier-mini");
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  assert.ok(text.length > 0);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.completion_tokens > 0);
  assert.ok(last.switchyard.total_cost_usd > 0);
});

test("errors are the SDK's error classes", async () => {
  const wrong = new OpenAI({ baseURL, apiKey: "sy-wrong", maxRetries: 0 });
  await assert.rejects(
    wrong.chat.completions.create({ model: "switchyard/auto", messages }),
    OpenAI.AuthenticationError,
  );
  await assert.rejects(
    client.chat.completions.create({ model: "no-such-model", messages }),
    OpenAI.NotFoundError,
  );
  const broke = new OpenAI({ baseURL, apiKey: brokeKey, maxRetries: 2 });
  await assert.rejects(
    broke.chat.completions.create({ model: "switchyard/auto", messages }),
    (error) => error instanceof OpenAI.RateLimitError && /budget/.test(error.message),
  );
  await assert.rejects(
    client.chat.completions.create({
      model: "switchyard/auto",
      messages: [{ role: "user", content: "x".repeat(5 * 1024 * 1024) }],
    }),
    (error) => error instanceof OpenAI.APIError && error.status === 413,
  );
});

test("models lists the routed name and the targets", async () => {
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.equal(ids[0], "switchyard/auto");
  assert.deepEqual(ids.slice(1).sort(), ["frontier-judge", "frontier-mini", "local-general"]);
});
