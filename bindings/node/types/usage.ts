// Compiled (never run) by `npm run typecheck` (tsc --strict): the TypeScript definitions
// accept the API as the README uses it, and reject what they must.
import { Client, Engine, OptiForkError, InvalidRulesetError, bucket } from "optifork";
import type { Assignment, Change, Context, EvaluationDetails, JsonValue, Status } from "optifork";
import { OptiForkProvider } from "optifork/openfeature";
import { OpenFeature } from "@openfeature/server-sdk";

export async function usage(): Promise<void> {
  const client = new Client("http://127.0.0.1:8000", "ofk_key", { pollIntervalMs: 30_000, streaming: true });
  const status: Status = await client.waitUntilReady(5000);
  const user: Context = { targetingKey: "user-123", country: "US", age: 34, beta: true, tags: ["a"] };
  const on: boolean = client.isEnabled("new_checkout", user);
  const limit: number = client.getInt("upload_limit_mb", user, 10);
  const color: string = client.getString("button_color", user, "blue");
  const value: JsonValue | "fallback" = client.getValue("any", user, "fallback" as const);
  const details: EvaluationDetails<JsonValue | null> = client.evaluateDetails("new_checkout", user);
  const theme: JsonValue | null = client.config("theme", user);
  const arm: Assignment = client.assign("checkout_redesign", user);
  const segments: string[] = client.segments(user);
  client.track("purchase", user, 49.9, { currency: "EUR" });
  const off: () => boolean = client.onChange((change: Change) => void change);
  off();
  await client.flush(5000);
  await client.close();

  const engine = Engine.fromRuleset({ flags: [{ name: "f", is_enabled: true }] });
  const version: number = engine.version;
  const b: number = bucket("salt", "unit");
  await OpenFeature.setProviderAndWait(new OptiForkProvider(engine));
  try {
    Engine.fromRuleset("{bad");
  } catch (e) {
    if (e instanceof InvalidRulesetError) console.log(e.path);
    else if (e instanceof OptiForkError) console.log(e.code);
  }
  void [status, on, limit, color, value, details, theme, arm, segments, version, b];

  // @ts-expect-error: a flag name is a string
  client.isEnabled(42, user);
  // @ts-expect-error: options are typed
  new Client("http://x", "k", { pollInterval: 5 });
  // @ts-expect-error: waitUntilReady returns a Promise
  const notAStatus: Status = client.waitUntilReady();
  void notAStatus;
}
