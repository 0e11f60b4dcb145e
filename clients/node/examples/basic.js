'use strict';
// Runnable example: ask, stream, route-only and a cost report against a router.
//
//   SWITCHYARD_ADDRESS=localhost:50051 SWITCHYARD_API_KEY=... node examples/basic.js
//
// Pass TRACEPARENT=00-<32 hex>-<16 hex>-01 to continue an existing trace; the router's spans
// then appear under that trace in Jaeger.
const { SwitchyardClient, SwitchyardError } = require('../src');

async function main() {
  const client = new SwitchyardClient(process.env.SWITCHYARD_ADDRESS ?? 'localhost:50051', {
    apiKey: process.env.SWITCHYARD_API_KEY,
    deadlineMs: Number(process.env.SWITCHYARD_DEADLINE_MS ?? 120_000),
  });
  const trace = process.env.TRACEPARENT ? { traceparent: process.env.TRACEPARENT } : {};
  const parameters = { maxTokens: Number(process.env.SWITCHYARD_MAX_TOKENS ?? 32), temperature: 0 };
  try {
    const answer = await client.complete('What is the capital of France? Answer in one word.', {
      parameters,
      ...trace,
    });
    console.log(`ask: [${answer.decision.target} ${answer.decision.model}] ${answer.text.trim()}`);
    console.log(`ask: request ${answer.requestId} cost $${answer.cost.totalCostUsd.toFixed(8)}`);
    for (const hop of answer.cost.hops) {
      console.log(`  hop ${hop.kind} ${hop.service} ${hop.status} ${hop.latencyMs.toFixed(1)} ms $${hop.costUsd.toFixed(8)}`);
    }

    process.stdout.write('stream: ');
    for await (const event of client.completeStream('Count from 1 to 5.', { parameters, ...trace })) {
      if (event.type === 'decision') process.stdout.write(`[${event.decision.target}] `);
      else if (event.type === 'delta') process.stdout.write(event.delta.text);
      else console.log(`\nstream: ${event.summary.finishReason}, ${event.summary.usage.outputTokens} tokens, $${event.summary.cost.totalCostUsd.toFixed(8)}`);
    }

    const routed = await client.route('Prove that there are infinitely many primes.', trace);
    const d = routed.decision;
    console.log(`route: ${d.target} (${d.targetKind}) because ${d.reason}: ${d.reasonDetail}; estimated $${d.estimatedCostUsd.toFixed(8)}`);

    const report = await client.costReport({ groupBy: 'model' });
    console.log(`cost report ${report.startTime.toISOString()} .. ${report.endTime.toISOString()}: ${report.total.requests} requests, $${report.total.costUsd.toFixed(8)} (saved $${report.total.savingUsd.toFixed(8)} against ${report.baselineModel})`);
    for (const row of report.rows) {
      console.log(`  ${row.key}: ${row.requests} requests, $${row.costUsd.toFixed(8)}`);
    }
  } catch (err) {
    if (err instanceof SwitchyardError) {
      console.error(`switchyard call failed: ${err.codeName}: ${err.details}`);
      process.exitCode = 1;
    } else {
      throw err;
    }
  } finally {
    client.close();
  }
}

main();
