// Type definitions for the optifork package.

/** A JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What a context attribute may hold (a Date becomes its ISO 8601 string). */
export type AttributeValue =
  | null
  | undefined
  | boolean
  | number
  | string
  | Date
  | AttributeValue[]
  | { [key: string]: AttributeValue };

/** A context: attributes by name. `targetingKey` (or `user_id`) is the targeting key. */
export type Context = { targetingKey?: string; user_id?: string | number; [attribute: string]: AttributeValue } | null | undefined;

/** A ruleset: an object, or its JSON text (string or UTF-8 bytes). */
export type Ruleset = object | string | Uint8Array;

/** OpenFeature's reasons, plus OptiFork's `PREREQUISITE_FAILED`. */
export type Reason = "STATIC" | "DEFAULT" | "TARGETING_MATCH" | "SPLIT" | "DISABLED" | "PREREQUISITE_FAILED" | "ERROR";

/** A flag's full result. */
export interface EvaluationDetails<T = JsonValue> {
  flagKey: string;
  /** The flag's value, or the default given when none is served. */
  value: T;
  variant: string | null;
  reason: Reason;
  errorCode: "FLAG_NOT_FOUND" | "TYPE_MISMATCH" | "TARGETING_KEY_MISSING" | null;
  ruleIndex: number | null;
}

/** An experiment assignment. */
export interface Assignment {
  experiment: string;
  /** The variant to show; the control variant when not in the experiment. */
  variant: string;
  /** Whether the user is enrolled (and, through a client, recorded as an exposure). */
  inExperiment: boolean;
  reason:
    | "ASSIGNED"
    | "EXPERIMENT_NOT_FOUND"
    | "INACTIVE"
    | "TARGETING_MISMATCH"
    | "OUTSIDE_LAYER"
    | "NOT_ALLOCATED"
    | "TARGETING_KEY_MISSING";
}

/** How fresh a client's ruleset is. */
export interface Status {
  state: "NOT_READY" | "READY" | "STALE" | "ERROR";
  source: "server" | "bootstrap" | "snapshot" | "manual" | null;
  version: number | null;
  environment: string | null;
  updatedAt: Date | null;
  confirmedAt: Date | null;
  lastError: string | null;
  /** Whether the change stream is connected. */
  streaming: boolean;
  isReady: boolean;
}

/** What changed when a new ruleset was installed. */
export interface Change {
  previousVersion: number | null;
  version: number;
  source: "server" | "bootstrap" | "snapshot" | "manual" | null;
  flags: string[];
  configs: string[];
  segments: string[];
  experiments: string[];
}

/** The client's counters. */
export interface Stats {
  rulesetRequests: number;
  rulesetUpdates: number;
  rulesetNotModified: number;
  rulesetErrors: number;
  rulesetsRefused: number;
  streamConnects: number;
  streamEvents: number;
  exposuresQueued: number;
  exposuresDeduplicated: number;
  eventsQueued: number;
  droppedBufferFull: number;
  droppedInvalid: number;
  droppedClosed: number;
  itemsSent: number;
  batchesSent: number;
  batchesDuplicate: number;
  batchRetries: number;
  itemsRefused: number;
  itemsUnsentAtClose: number;
  buffered: number;
}

/** Client options. Durations are milliseconds. */
export interface ClientOptions {
  /** How often to poll while the change stream is down (30000). */
  pollIntervalMs?: number;
  /** Hold a Server-Sent Events stream open for changes (true). */
  streaming?: boolean;
  requestTimeoutMs?: number;
  streamIdleTimeoutMs?: number;
  /** A ruleset served until the server answers. */
  bootstrap?: Ruleset;
  bootstrapFile?: string;
  /** A file keeping the last good ruleset across restarts. */
  snapshotPath?: string;
  exposureBatchSize?: number;
  /** The longest wait before exposures and events are sent (5000). */
  flushIntervalMs?: number;
  exposureBufferCapacity?: number;
  exposureDedupCapacity?: number;
  sendContextWithExposures?: boolean;
  headers?: Record<string, string>;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** How long close() may spend sending what is queued (5000). */
  closeTimeoutMs?: number;
  /** Never contact the server: serve the bootstrap or snapshot. */
  offline?: boolean;
}

/** Evaluation methods shared by Engine and Client. */
declare class Evaluates {
  /** Whether a boolean flag is on for this context (false for anything else). */
  isEnabled(flag: string, context?: Context): boolean;
  /** The flag's value whatever its type, or `defaultValue` when none is served. */
  getValue<D = undefined>(flag: string, context?: Context, defaultValue?: D): JsonValue | D;
  getBool(flag: string, context?: Context, defaultValue?: boolean): boolean;
  getString(flag: string, context?: Context, defaultValue?: string): string;
  getNumber(flag: string, context?: Context, defaultValue?: number): number;
  getInt(flag: string, context?: Context, defaultValue?: number): number;
  getJson<D = null>(flag: string, context?: Context, defaultValue?: D): JsonValue | D;
  evaluateDetails<D = null>(flag: string, context?: Context, defaultValue?: D): EvaluationDetails<JsonValue | D>;
  /** The config resolved for the context; `null` if unknown or inactive. */
  config(name: string, context?: Context): JsonValue | null;
  segments(context?: Context): string[];
  inSegment(name: string, context?: Context): boolean | null;
  assign(experiment: string, context?: Context): Assignment;
  flagNames(): string[];
}

/** A compiled ruleset evaluated offline (no server, no exposures). */
export declare class Engine extends Evaluates {
  private constructor();
  /** Compiles a ruleset; throws InvalidRulesetError with the culprit's JSON path. */
  static fromRuleset(ruleset: Ruleset): Engine;
  readonly version: number;
  readonly environment: string;
}

/** A client of an OptiFork server. */
export declare class Client extends Evaluates {
  constructor(url: string, sdkKey: string, options?: ClientOptions);
  /** Resolves once the server's ruleset is served; rejects with NotReadyError or UnauthorizedError. */
  waitUntilReady(timeoutMs?: number): Promise<Status>;
  /** Sends everything recorded; rejects with FlushTimeoutError if not acknowledged in time. */
  flush(timeoutMs?: number): Promise<void>;
  /** Stops the background work after a last flush. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  status(): Status;
  readonly version: number | null;
  track(event: string, context?: Context, value?: number | null, properties?: Record<string, JsonValue> | null): void;
  /** Calls `callback(change)` after each new ruleset; returns a function that removes it. */
  onChange(callback: (change: Change) => void): () => boolean;
  /** Removes a callback given to onChange; returns whether it was registered. */
  offChange(callback: (change: Change) => void): boolean;
  updateRuleset(ruleset: Ruleset): Change;
  stats(): Stats;
}

/** The bucket (0-9999) of `unit` under `salt`: the hash behind every percentage. */
export declare function bucket(salt: string, unit: string): number;

/** The base of every OptiFork error. */
export declare class OptiForkError extends Error {
  code: string;
}
export declare class InvalidRulesetError extends OptiForkError {
  /** The JSON path of the culprit, such as `$.flags[0].targeting_rules`. */
  path: string | null;
  /** `unknown_operator`, `invalid`, ... */
  ruleCode: string | null;
}
export declare class InvalidOptionError extends OptiForkError {
  option: string | null;
}
export declare class NotReadyError extends OptiForkError {}
export declare class UnauthorizedError extends OptiForkError {}
export declare class FlushTimeoutError extends OptiForkError {}
export declare class InternalError extends OptiForkError {}
