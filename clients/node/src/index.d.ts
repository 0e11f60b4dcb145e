// Types for @switchyard/client. Field names are the contract's, in lowerCamelCase; enums are
// their names (for example 'TARGET_KIND_LOCAL'); 64-bit integers are numbers.
import type { ChannelCredentials, Metadata, status as grpcStatus } from '@grpc/grpc-js';
import type { Context } from '@opentelemetry/api';

export type Role = 'system' | 'user' | 'assistant' | 'ROLE_SYSTEM' | 'ROLE_USER' | 'ROLE_ASSISTANT';
export interface ChatMessage { role: Role; content: string }

export interface GenerationParameters {
  maxTokens?: number; temperature?: number; topP?: number; stop?: string[]; seed?: number;
}
export interface RoutingOptions {
  escalationThreshold?: number; forceTarget?: string; disallowFrontier?: boolean; maxCostUsd?: number;
}

export interface CallOptions {
  /** Deadline of this call in milliseconds (default: the client's). */
  deadlineMs?: number;
  /** Overrides the client's key for this call. */
  apiKey?: string;
  /** W3C traceparent to continue; wins over `context`. */
  traceparent?: string;
  tracestate?: string;
  /** OpenTelemetry context whose span becomes the parent (default: the active context). */
  context?: Context;
  /** Extra metadata. */
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}
export interface RequestOptions extends CallOptions {
  parameters?: GenerationParameters;
  routing?: RoutingOptions;
}

export interface Usage {
  inputTokens: number; outputTokens: number; cachedInputTokens: number; reasoningTokens: number; costUsd: number;
}
export interface Classification {
  taskType: string;
  taskTypeProbabilities: { taskType: string; probability: number }[];
  complexityScore: number; complexityLevel: string; escalationProbability: number;
  modelVersion: string; truncated: boolean; inputTokens: number;
}
export interface RoutingDecision {
  target: string; targetKind: string; backend: string; model: string; reason: string;
  reasonDetail: string; escalationScore: number; escalationThreshold: number;
  estimatedCostUsd: number; classification: Classification | null;
  /** True when the classifier saw an excerpt (start and end) of a prompt too long to send whole. */
  promptTruncatedForClassification: boolean;
}
export interface Hop {
  kind: string; service: string; target: string; model: string; status: string;
  latencyMs: number; costUsd: number; inputTokens: number; outputTokens: number;
}
export interface CostBreakdown { hops: Hop[]; totalCostUsd: number; totalLatencyMs: number }
export interface CompleteResponse {
  requestId: string; text: string; reasoningText: string; finishReason: string;
  usage: Usage; decision: RoutingDecision; cost: CostBreakdown;
}
export interface CompleteStreamSummary {
  requestId: string; finishReason: string; usage: Usage; decision: RoutingDecision; cost: CostBreakdown;
}
export type StreamEvent =
  | { type: 'decision'; decision: RoutingDecision }
  | { type: 'delta'; delta: { text: string; reasoningText: string } }
  | { type: 'summary'; summary: CompleteStreamSummary };
export interface RouteResponse { decision: RoutingDecision; cost: CostBreakdown }

export interface CostReportRow {
  key: string; requests: number; failedRequests: number; inputTokens: number; outputTokens: number;
  costUsd: number; latencyP50Ms: number; latencyP95Ms: number; baselineCostUsd: number; savingUsd: number;
}
export interface CostReport {
  startTime: Date | null; endTime: Date | null; groupBy: string; rows: CostReportRow[];
  total: CostReportRow; baselineModel: string;
}
export interface CostQuery {
  start?: Date | string | number; end?: Date | string | number;
  groupBy?: 'model' | 'task_type' | 'taskType' | 'tenant' | 'target';
}

export interface FeedbackResponse { requestId: string; ratedTier: string; ratedModel: string; }

export interface ClientOptions {
  apiKey?: string; deadlineMs?: number; credentials?: ChannelCredentials; tls?: boolean;
  protoDir?: string; channelOptions?: Record<string, unknown>;
}

export class SwitchyardError extends Error {
  readonly code: number; readonly codeName: string; readonly details: string; readonly metadata?: Metadata;
}

export class SwitchyardClient {
  constructor(address: string, options?: ClientOptions);
  complete(messages: string | ChatMessage[], options?: RequestOptions): Promise<CompleteResponse>;
  completeStream(messages: string | ChatMessage[], options?: RequestOptions): AsyncGenerator<StreamEvent, void, undefined>;
  route(messages: string | ChatMessage[], options?: RequestOptions): Promise<RouteResponse>;
  costReport(query?: CostQuery, options?: CallOptions): Promise<CostReport>;
  feedback(requestId: string, good: boolean, reason?: string, options?: CallOptions): Promise<FeedbackResponse>;
  waitForReady(deadlineMs?: number): Promise<void>;
  close(): void;
}

export const status: typeof grpcStatus;
export function traceHeaders(options?: { traceparent?: string; tracestate?: string; context?: Context }): Record<string, string>;
export function toMessages(input: string | ChatMessage[]): { role: string; content: string }[];
