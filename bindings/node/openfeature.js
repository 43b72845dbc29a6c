// An OpenFeature provider for @openfeature/server-sdk (a peer dependency), over an OptiFork
// Client (or an offline Engine).
//
//   const { OpenFeature } = require("@openfeature/server-sdk");
//   const { Client } = require("optifork");
//   const { OptiForkProvider } = require("optifork/openfeature");
//   await OpenFeature.setProviderAndWait(new OptiForkProvider(new Client(url, sdkKey)));
//   const flags = OpenFeature.getClient();
//   await flags.getBooleanValue("new_checkout", false, { targetingKey: "user-1", country: "US" });
//
// Mapping: the evaluation context is the OptiFork context as is (`targetingKey` plus
// attributes; Dates become ISO 8601 strings). Reasons are OpenFeature's, plus OptiFork's
// PREREQUISITE_FAILED; a flag that serves no value gives the default with its reason.
// Errors: FLAG_NOT_FOUND, TYPE_MISMATCH, TARGETING_KEY_MISSING, and PROVIDER_NOT_READY while a
// client has no ruleset. Flag metadata: ruleset_version, and rule_index when a rule matched.
// `initialize` waits for the client (initTimeoutMs); each new ruleset emits
// PROVIDER_CONFIGURATION_CHANGED with the flags that changed; `onClose` closes the client;
// `track` records a metric event.
"use strict";

const { ErrorCode, OpenFeatureEventEmitter, ProviderEvents, ProviderFatalError } = require("@openfeature/server-sdk");
const { Client, Engine, UnauthorizedError } = require("./index.js");

const ERRORS = {
  FLAG_NOT_FOUND: ErrorCode.FLAG_NOT_FOUND,
  TYPE_MISMATCH: ErrorCode.TYPE_MISMATCH,
  TARGETING_KEY_MISSING: ErrorCode.TARGETING_KEY_MISSING,
};

const isObject = (v) => v !== null && typeof v === "object";

class OptiForkProvider {
  metadata = { name: "OptiFork" };
  runsOn = "server";
  events = new OpenFeatureEventEmitter();
  #source;
  #initTimeoutMs;
  #unsubscribe = null;

  /**
   * @param {import("./index.js").Client | import("./index.js").Engine} source
   * @param {{initTimeoutMs?: number}} [options]
   */
  constructor(source, { initTimeoutMs = 5000 } = {}) {
    if (!(source instanceof Client) && !(source instanceof Engine)) {
      throw new TypeError("OptiForkProvider needs an optifork Client or Engine");
    }
    this.#source = source;
    this.#initTimeoutMs = initTimeoutMs;
  }

  /** The client (or engine) evaluating for this provider. */
  get client() {
    return this.#source;
  }

  async initialize() {
    const source = this.#source;
    if (!(source instanceof Client)) { return; }
    try {
      await source.waitUntilReady(this.#initTimeoutMs);
    } catch (e) {
      if (e instanceof UnauthorizedError) { throw new ProviderFatalError(e.message); }
      throw e;
    }
    this.#unsubscribe = source.onChange((change) => {
      this.events.emit(ProviderEvents.ConfigurationChanged, {
        flagsChanged: change.flags,
        message: `ruleset version ${change.version}`,
      });
    });
  }

  async onClose() {
    const source = this.#source;
    if (!(source instanceof Client)) { return; }
    if (this.#unsubscribe) { this.#unsubscribe(); this.#unsubscribe = null; }
    await source.close();
  }

  track(trackingEventName, context, details) {
    const source = this.#source;
    if (!(source instanceof Client)) { return; }
    const { value, ...properties } = details ?? {};
    source.track(trackingEventName, context, value, Object.keys(properties).length ? properties : undefined);
  }

  #resolve(flagKey, defaultValue, context, accept) {
    const source = this.#source;
    const d = source.evaluateDetails(flagKey, context);
    const flagMetadata = {};
    if (source.version !== null && source.version !== undefined) { flagMetadata.ruleset_version = source.version; }
    if (d.ruleIndex !== null) { flagMetadata.rule_index = d.ruleIndex; }
    if (d.errorCode !== null) {
      if (d.errorCode === "FLAG_NOT_FOUND" && source instanceof Client && source.status().source === null) {
        return { value: defaultValue, reason: "ERROR", errorCode: ErrorCode.PROVIDER_NOT_READY, errorMessage: "no ruleset yet", flagMetadata };
      }
      return {
        value: defaultValue,
        reason: "ERROR",
        errorCode: ERRORS[d.errorCode] ?? ErrorCode.GENERAL,
        errorMessage: `${d.errorCode} (${flagKey})`,
        flagMetadata,
      };
    }
    if (d.variant === null) {
      // The flag serves no value (an off flag without an off variant): the default.
      return { value: defaultValue, reason: d.reason, flagMetadata };
    }
    if (!accept(d.value)) {
      return {
        value: defaultValue,
        reason: "ERROR",
        errorCode: ErrorCode.TYPE_MISMATCH,
        errorMessage: `flag ${JSON.stringify(flagKey)} is not of the type asked for`,
        flagMetadata,
      };
    }
    return { value: d.value, variant: d.variant, reason: d.reason, flagMetadata };
  }

  async resolveBooleanEvaluation(flagKey, defaultValue, context) {
    return this.#resolve(flagKey, defaultValue, context, (v) => typeof v === "boolean");
  }

  async resolveStringEvaluation(flagKey, defaultValue, context) {
    return this.#resolve(flagKey, defaultValue, context, (v) => typeof v === "string");
  }

  async resolveNumberEvaluation(flagKey, defaultValue, context) {
    return this.#resolve(flagKey, defaultValue, context, (v) => typeof v === "number");
  }

  async resolveObjectEvaluation(flagKey, defaultValue, context) {
    return this.#resolve(flagKey, defaultValue, context, isObject);
  }
}

module.exports = { OptiForkProvider };
