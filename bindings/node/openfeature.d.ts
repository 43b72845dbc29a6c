// Type definitions for optifork/openfeature.
import type { EvaluationContext, JsonValue, OpenFeatureEventEmitter, Provider, ResolutionDetails, TrackingEventDetails } from "@openfeature/server-sdk";
import type { Client, Engine } from "./index";

/** An OpenFeature provider for @openfeature/server-sdk over an OptiFork Client or Engine. */
export declare class OptiForkProvider implements Provider {
  constructor(source: Client | Engine, options?: { initTimeoutMs?: number });
  readonly metadata: { name: "OptiFork" };
  readonly runsOn: "server";
  readonly events: OpenFeatureEventEmitter;
  /** The client (or engine) evaluating for this provider. */
  readonly client: Client | Engine;
  initialize(): Promise<void>;
  onClose(): Promise<void>;
  track(trackingEventName: string, context: EvaluationContext, details: TrackingEventDetails): void;
  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: EvaluationContext): Promise<ResolutionDetails<boolean>>;
  resolveStringEvaluation(flagKey: string, defaultValue: string, context: EvaluationContext): Promise<ResolutionDetails<string>>;
  resolveNumberEvaluation(flagKey: string, defaultValue: number, context: EvaluationContext): Promise<ResolutionDetails<number>>;
  resolveObjectEvaluation<T extends JsonValue>(flagKey: string, defaultValue: T, context: EvaluationContext): Promise<ResolutionDetails<T>>;
}
