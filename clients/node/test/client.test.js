'use strict';
// Tests of the Node client against a LIVE router (node's test runner):
//
//   SWITCHYARD_ROUTER_ADDRESS=127.0.0.1:50051 SWITCHYARD_API_KEY=... node --test test/
//
// tests/clients/ starts the router with its real dependencies and runs this file. Optional:
//   SWITCHYARD_TEST_TRACEPARENT   a traceparent to send; the driver checks the router's spans
//   SWITCHYARD_TEST_OTEL_TRACE_ID a trace id to continue through an OpenTelemetry context
//   SWITCHYARD_MAX_TOKENS         max tokens per generation (default 8)
const test = require('node:test');
const assert = require('node:assert/strict');
const otel = require('@opentelemetry/api');
const { SwitchyardClient, SwitchyardError, status, traceHeaders } = require('../src');

const address = process.env.SWITCHYARD_ROUTER_ADDRESS;
const apiKey = process.env.SWITCHYARD_API_KEY;
const maxTokens = Number(process.env.SWITCHYARD_MAX_TOKENS ?? 8);
const live = { skip: address ? false : 'SWITCHYARD_ROUTER_ADDRESS is not set' };
const parameters = { maxTokens, temperature: 0 };

// Pure checks: no router needed.
test('traceHeaders: explicit traceparent wins and is validated', () => {
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  assert.deepEqual(traceHeaders({ traceparent: tp }), { traceparent: tp });
  assert.throws(() => traceHeaders({ traceparent: 'nope' }), TypeError);
});

test('traceHeaders: an OpenTelemetry context becomes a traceparent', () => {
  const spanContext = {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: otel.TraceFlags.SAMPLED,
  };
  const ctx = otel.trace.setSpanContext(otel.ROOT_CONTEXT, spanContext);
  assert.deepEqual(traceHeaders({ context: ctx }), {
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  });
  assert.deepEqual(traceHeaders({ context: otel.ROOT_CONTEXT }), {});
});

test('bad input is refused before any call', () => {
  const client = new SwitchyardClient('127.0.0.1:9');
  try {
    assert.throws(() => client.complete([]), TypeError);
    assert.throws(() => client.complete([{ role: 'robot', content: 'x' }]), TypeError);
    assert.throws(() => client.route('hi', { deadlineMs: -1 }), TypeError);
  } finally {
    client.close();
  }
});

test('live router', live, async (t) => {
  const client = new SwitchyardClient(address, { apiKey, deadlineMs: 180_000 });
  t.after(() => client.close());
  await client.waitForReady(30_000);
  let requestsMade = 0;
  let answeredId = '';

  await t.test('complete answers and accounts for every hop', async () => {
    const traceparent = process.env.SWITCHYARD_TEST_TRACEPARENT;
    const response = await client.complete(
      [
        { role: 'system', content: 'You answer briefly.' },
        { role: 'user', content: 'What is the capital of France?' },
      ],
      { parameters, ...(traceparent ? { traceparent } : {}) },
    );
    requestsMade += 1;
    answeredId = response.requestId;
    assert.ok(response.requestId.length > 0);
    assert.equal(typeof response.text, 'string');
    assert.ok(response.text.length > 0, 'empty answer');
    assert.ok(response.usage.outputTokens > 0 && response.usage.outputTokens <= maxTokens);
    assert.ok(response.decision.target.length > 0);
    assert.notEqual(response.decision.targetKind, 'TARGET_KIND_UNSPECIFIED');
    const generate = response.cost.hops.filter((h) => h.kind === 'HOP_KIND_GENERATE');
    assert.ok(generate.length >= 1, 'no generate hop');
    assert.equal(generate.at(-1).status, 'OK');
    const sum = response.cost.hops.reduce((acc, h) => acc + h.costUsd, 0);
    assert.ok(Math.abs(sum - response.cost.totalCostUsd) < 1e-9, `hops ${sum} != total ${response.cost.totalCostUsd}`);
    assert.ok(response.cost.totalLatencyMs > 0);
  });

  await t.test('completeStream: decision, deltas, summary', async () => {
    const events = [];
    const traceId = process.env.SWITCHYARD_TEST_OTEL_TRACE_ID;
    const context = traceId
      ? otel.trace.setSpanContext(otel.ROOT_CONTEXT, {
          traceId,
          spanId: '1111111111111111',
          traceFlags: otel.TraceFlags.SAMPLED,
        })
      : undefined;
    for await (const event of client.completeStream('Count from 1 to 5.', { parameters, context })) {
      events.push(event);
    }
    requestsMade += 1;
    assert.equal(events[0].type, 'decision');
    assert.equal(events.at(-1).type, 'summary');
    const deltas = events.filter((e) => e.type === 'delta');
    assert.ok(deltas.length >= 1, 'no delta');
    assert.ok(deltas.map((e) => e.delta.text).join('').length > 0);
    const summary = events.at(-1).summary;
    assert.ok(summary.requestId.length > 0);
    assert.ok(summary.usage.outputTokens > 0 && summary.usage.outputTokens <= maxTokens);
    assert.ok(summary.cost.hops.some((h) => h.kind === 'HOP_KIND_GENERATE' && h.status === 'OK'));
  });

  await t.test('route decides without generating', async () => {
    const response = await client.route('Write a haiku about autumn.');
    assert.ok(response.decision.target.length > 0);
    assert.ok(response.decision.estimatedCostUsd >= 0);
    assert.ok(response.decision.escalationScore >= 0 && response.decision.escalationScore <= 1);
    assert.equal(response.cost.hops.filter((h) => h.kind === 'HOP_KIND_GENERATE').length, 0);
    // The classifier answered: the decision rests on its classification.
    assert.notEqual(response.decision.reason, 'DECISION_REASON_CLASSIFIER_UNAVAILABLE');
    assert.ok(response.decision.classification.taskType.startsWith('TASK_TYPE_'));
    assert.ok(response.cost.hops.some((h) => h.kind === 'HOP_KIND_CLASSIFY' && h.status === 'OK'));
  });

  await t.test('feedback rates an answer of this key, and only its own', async () => {
    const rated = await client.feedback(answeredId, true, 'checked by the Node client test');
    assert.equal(rated.requestId, answeredId);
    assert.notEqual(rated.ratedTier, 'TARGET_KIND_UNSPECIFIED');
    assert.ok(rated.ratedModel.length > 0);
    await assert.rejects(
      client.feedback('no-such-request', false),
      (err) => err instanceof SwitchyardError && err.code === status.NOT_FOUND,
    );
    assert.throws(() => client.feedback('', true), TypeError);
  });

  await t.test('costReport counts the requests made here', async () => {
    const report = await client.costReport({ groupBy: 'model', end: new Date(Date.now() + 60_000) });
    assert.ok(report.startTime instanceof Date && report.endTime instanceof Date);
    assert.ok(report.startTime < report.endTime);
    assert.equal(report.groupBy, 'COST_GROUPING_MODEL');
    assert.ok(report.total.requests >= requestsMade, `${report.total.requests} < ${requestsMade}`);
    assert.ok(report.rows.length >= 1);
    const rowsTotal = report.rows.reduce((acc, r) => acc + r.requests, 0);
    assert.equal(rowsTotal, report.total.requests);
    assert.ok(report.total.costUsd > 0);
    await assert.rejects(client.costReport({ groupBy: 'colour' }), TypeError);
  });

  await t.test('a deadline that passes ends the call with DEADLINE_EXCEEDED', async () => {
    await assert.rejects(
      client.complete('Tell me a long story.', { parameters, deadlineMs: 1 }),
      (err) => err instanceof SwitchyardError && err.code === status.DEADLINE_EXCEEDED,
    );
  });

  await t.test('an unknown key is UNAUTHENTICATED', { skip: apiKey ? false : 'no API key configured' }, async () => {
    await assert.rejects(
      client.route('hello', { apiKey: 'not-a-key' }),
      (err) => err instanceof SwitchyardError && err.code === status.UNAUTHENTICATED && !err.message.includes('not-a-key'),
    );
  });

  await t.test('bad routing options are INVALID_ARGUMENT', async () => {
    await assert.rejects(
      client.route('hello', { routing: { forceTarget: 'no-such-target' } }),
      (err) => err instanceof SwitchyardError && err.code === status.INVALID_ARGUMENT,
    );
  });
});
