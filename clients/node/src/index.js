'use strict';
/**
 * Switchyard client for Node.js: complete, stream, route-only and cost reports against the
 * router (`switchyard.router.v1.RouterService`, `switchyard.cost.v1.CostService`).
 *
 * The contract is loaded at run time from the same `.proto` files every other client uses
 * (`protos/` of the repository, or the copy `npm pack` puts in this package), so there is no
 * generated code to keep in step. Types for TypeScript callers are in `index.d.ts`.
 *
 * Every call carries a deadline, `authorization: Bearer <key>` metadata when a key is set, and
 * the caller's trace context as W3C `traceparent` / `tracestate` metadata, so a caller's trace
 * continues into the router and on to every service behind it.
 */

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const otel = require('@opentelemetry/api');

const PROTO_FILES = [
  'switchyard/router/v1/router.proto',
  'switchyard/router/v1/outcomes.proto',
  'switchyard/cost/v1/cost.proto',
];
const DEFAULT_DEADLINE_MS = 60_000;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

const ROLES = {
  system: 'ROLE_SYSTEM',
  user: 'ROLE_USER',
  assistant: 'ROLE_ASSISTANT',
};

const GROUPINGS = {
  model: 'COST_GROUPING_MODEL',
  task_type: 'COST_GROUPING_TASK_TYPE',
  taskType: 'COST_GROUPING_TASK_TYPE',
  tenant: 'COST_GROUPING_TENANT',
  target: 'COST_GROUPING_TARGET',
};

/** The error every method throws for a failed call: the gRPC status code and its message. */
class SwitchyardError extends Error {
  /**
   * @param {number} code gRPC status code (`grpc.status`).
   * @param {string} details the server's message.
   * @param {{cause?: unknown, metadata?: grpc.Metadata}} [extra]
   */
  constructor(code, details, extra = {}) {
    const codeName = grpc.status[code] ?? String(code);
    super(`${codeName}: ${details}`, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'SwitchyardError';
    this.code = code;
    this.codeName = codeName;
    this.details = details;
    this.metadata = extra.metadata;
  }

  static fromServiceError(err) {
    if (err instanceof SwitchyardError) return err;
    if (err && typeof err.code === 'number') {
      return new SwitchyardError(err.code, err.details ?? err.message, {
        cause: err,
        metadata: err.metadata,
      });
    }
    return err;
  }
}

function defaultProtoDir() {
  const candidates = [
    process.env.SWITCHYARD_PROTO_DIR,
    path.resolve(__dirname, '..', 'protos'), // the copy `npm pack` makes
    path.resolve(__dirname, '..', '..', '..', 'protos'), // the repository's contract
  ];
  for (const dir of candidates) {
    if (dir && fs.existsSync(path.join(dir, PROTO_FILES[0]))) return dir;
  }
  throw new Error(
    'Switchyard protos not found: set SWITCHYARD_PROTO_DIR or pass {protoDir} ' +
      `(looked in ${candidates.filter(Boolean).join(', ')})`,
  );
}

const packageCache = new Map();

/** Loads the contract once per directory. Enums travel as their names, 64-bit ints as numbers. */
function loadContract(protoDir) {
  if (!packageCache.has(protoDir)) {
    const definition = protoLoader.loadSync(PROTO_FILES, {
      includeDirs: [protoDir],
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    packageCache.set(protoDir, grpc.loadPackageDefinition(definition));
  }
  return packageCache.get(protoDir);
}

/** Turns a prompt string or a list of `{role, content}` into the contract's messages. */
function toMessages(input) {
  if (typeof input === 'string') {
    if (input.length === 0) throw new TypeError('prompt must not be empty');
    return [{ role: 'ROLE_USER', content: input }];
  }
  if (!Array.isArray(input) || input.length === 0) {
    throw new TypeError('messages must be a non-empty string or array of {role, content}');
  }
  return input.map((m, i) => {
    const role = ROLES[m.role] ?? (Object.values(ROLES).includes(m.role) ? m.role : undefined);
    if (!role) throw new TypeError(`messages[${i}].role must be system, user or assistant`);
    if (typeof m.content !== 'string') throw new TypeError(`messages[${i}].content must be a string`);
    return { role, content: m.content };
  });
}

function toTimestamp(value) {
  if (value === undefined || value === null) return null;
  const date = value instanceof Date ? value : new Date(value);
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new TypeError(`not a date: ${value}`);
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

function fromTimestamp(ts) {
  if (!ts) return null;
  return new Date(Number(ts.seconds) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));
}

/**
 * W3C trace context of the call: an explicit `traceparent` wins; otherwise the given OTel
 * context (or the active one) is injected, through the registered propagator when the caller
 * has set one up, else written directly from its span context.
 */
function traceHeaders({ traceparent, tracestate, context } = {}) {
  if (traceparent !== undefined) {
    if (!TRACEPARENT.test(traceparent)) {
      throw new TypeError(`traceparent is not W3C trace context: ${JSON.stringify(traceparent)}`);
    }
    return tracestate ? { traceparent, tracestate } : { traceparent };
  }
  const ctx = context ?? otel.context.active();
  const carrier = {};
  otel.propagation.inject(ctx, carrier);
  if (carrier.traceparent) return carrier;
  const span = otel.trace.getSpanContext(ctx);
  if (!span || !otel.isSpanContextValid(span)) return {};
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, '0');
  const headers = { traceparent: `00-${span.traceId}-${span.spanId}-${flags}` };
  const state = span.traceState?.serialize();
  if (state) headers.tracestate = state;
  return headers;
}

class SwitchyardClient {
  /**
   * @param {string} address `host:port` of the router.
   * @param {object} [options]
   * @param {string} [options.apiKey] sent as `authorization: Bearer <key>`.
   * @param {number} [options.deadlineMs] default deadline of every call (60 s).
   * @param {grpc.ChannelCredentials} [options.credentials] default: TLS when `tls` is true,
   *   else plaintext (a sidecar or a private network).
   * @param {boolean} [options.tls]
   * @param {string} [options.protoDir]
   * @param {object} [options.channelOptions] extra grpc-js channel options.
   */
  constructor(address, options = {}) {
    if (!address) throw new TypeError('address is required (host:port of the router)');
    this.address = address;
    this.apiKey = options.apiKey;
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const credentials =
      options.credentials ??
      (options.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
    const contract = loadContract(options.protoDir ?? defaultProtoDir());
    const channelOptions = {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.primary_user_agent': 'switchyard-node/0.1.0',
      ...options.channelOptions,
    };
    this.router = new contract.switchyard.router.v1.RouterService(address, credentials, channelOptions);
    this.cost = new contract.switchyard.cost.v1.CostService(address, credentials, {
      ...channelOptions,
      channelOverride: this.router.getChannel(),
    });
    this.outcomes = new contract.switchyard.router.v1.OutcomeService(address, credentials, {
      ...channelOptions,
      channelOverride: this.router.getChannel(),
    });
  }

  _metadata(options) {
    const md = new grpc.Metadata();
    const key = options.apiKey ?? this.apiKey;
    if (key) md.set('authorization', `Bearer ${key}`);
    for (const [k, v] of Object.entries(traceHeaders(options))) md.set(k, v);
    for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
    return md;
  }

  _callOptions(options) {
    const ms = options.deadlineMs ?? this.deadlineMs;
    if (!(ms > 0)) throw new TypeError(`deadlineMs must be positive, got ${ms}`);
    return { deadline: new Date(Date.now() + ms) };
  }

  _unary(stub, method, request, options) {
    const metadata = this._metadata(options);
    const callOptions = this._callOptions(options);
    return new Promise((resolve, reject) => {
      const call = stub[method](request, metadata, callOptions, (err, response) => {
        if (err) reject(SwitchyardError.fromServiceError(err));
        else resolve(response);
      });
      bindAbort(call, options.signal);
    });
  }

  _request(messages, options) {
    const request = { messages: toMessages(messages) };
    if (options.parameters) request.parameters = options.parameters;
    if (options.routing) request.routing = options.routing;
    return request;
  }

  /**
   * Routes and answers one request.
   * @returns {Promise<object>} `{requestId, text, reasoningText, finishReason, usage, decision, cost}`
   */
  complete(messages, options = {}) {
    return this._unary(this.router, 'Complete', this._request(messages, options), options);
  }

  /**
   * Routes one request and streams the answer. Yields `{type: 'decision', decision}` first,
   * then `{type: 'delta', delta}` pieces, then `{type: 'summary', summary}`; a stream that
   * ends without a summary throws a SwitchyardError.
   */
  async *completeStream(messages, options = {}) {
    const request = this._request(messages, options);
    const call = this.router.CompleteStream(request, this._metadata(options), this._callOptions(options));
    bindAbort(call, options.signal);
    let summarized = false;
    try {
      for await (const message of call) {
        const type = message.event;
        if (type === 'summary') summarized = true;
        yield { type, [type]: message[type] };
      }
    } catch (err) {
      throw SwitchyardError.fromServiceError(err);
    } finally {
      if (!summarized) call.cancel();
    }
    if (!summarized) {
      throw new SwitchyardError(grpc.status.UNKNOWN, 'stream ended without a summary');
    }
  }

  /** The routing decision only; nothing is generated. `{decision, cost}` */
  route(messages, options = {}) {
    return this._unary(this.router, 'Route', this._request(messages, options), options);
  }

  /**
   * Aggregated cost over a window, from the router's ledger (the key's tenant only).
   * @param {{start?: Date|string|number, end?: Date|string|number, groupBy?: string}} [query]
   */
  async costReport(query = {}, options = {}) {
    const groupBy = query.groupBy ?? 'model';
    const grouping = GROUPINGS[groupBy] ?? (Object.values(GROUPINGS).includes(groupBy) ? groupBy : null);
    if (!grouping) throw new TypeError(`groupBy must be one of ${Object.keys(GROUPINGS).join(', ')}`);
    const request = { groupBy: grouping };
    const start = toTimestamp(query.start);
    const end = toTimestamp(query.end);
    if (start) request.startTime = start;
    if (end) request.endTime = end;
    const response = await this._unary(this.cost, 'GetCostReport', request, options);
    return { ...response, startTime: fromTimestamp(response.startTime), endTime: fromTimestamp(response.endTime) };
  }

  /**
   * Rates the answer of one of the key's own requests (`response.requestId`): good or not,
   * with an optional reason of at most 500 characters. The last verdict wins.
   * @returns {Promise<object>} `{requestId, ratedTier, ratedModel}`
   */
  feedback(requestId, good, reason = '', options = {}) {
    if (typeof requestId !== 'string' || requestId.length === 0) {
      throw new TypeError('requestId must be a non-empty string');
    }
    const request = {
      requestId,
      verdict: good ? 'FEEDBACK_VERDICT_GOOD' : 'FEEDBACK_VERDICT_NOT_GOOD',
      reason,
    };
    return this._unary(this.outcomes, 'SubmitFeedback', request, options);
  }

  /** Waits until the channel is connected (or the deadline passes). */
  waitForReady(deadlineMs = 10_000) {
    return new Promise((resolve, reject) => {
      this.router.waitForReady(new Date(Date.now() + deadlineMs), (err) => (err ? reject(err) : resolve()));
    });
  }

  close() {
    this.router.close();
  }
}

function bindAbort(call, signal) {
  if (!signal) return;
  if (signal.aborted) call.cancel();
  else signal.addEventListener('abort', () => call.cancel(), { once: true });
}

module.exports = {
  SwitchyardClient,
  SwitchyardError,
  status: grpc.status,
  traceHeaders,
  toMessages,
};
