// OptiFork for Node.js: feature flags, remote configs, segments and A/B experiments evaluated
// in process by OptiFork's Rust core, through a Node-API addon (optifork.node, built from the
// napi-rs crate in src/ by build.js). This file is the public API; the addon does the work.
"use strict";

const native = require("./optifork.node");

// ---------------------------------------------------------------------------------------------
// Errors

/** The base of every OptiFork error. `code` names the kind (`ERR_OPTIFORK_...`). */
class OptiForkError extends Error {
  constructor(message, code = "ERR_OPTIFORK", options) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A ruleset that does not parse or compile; `path` is the JSON path of the culprit and
 * `ruleCode` a stable machine-readable code (`unknown_operator`, `invalid`, ...). */
class InvalidRulesetError extends OptiForkError {
  constructor(message, { path = null, ruleCode = null } = {}) {
    super(message, "ERR_OPTIFORK_INVALID_RULESET");
    this.path = path;
    this.ruleCode = ruleCode;
  }
}

/** A client option (or the URL) with a value out of range; `option` names it. */
class InvalidOptionError extends OptiForkError {
  constructor(message, option = null) {
    super(message, "ERR_OPTIFORK_INVALID_OPTION");
    this.option = option;
  }
}

/** `waitUntilReady` gave up: no ruleset came from the server in time. */
class NotReadyError extends OptiForkError {
  constructor(message) { super(message, "ERR_OPTIFORK_NOT_READY"); }
}

/** The server refused the SDK key. */
class UnauthorizedError extends OptiForkError {
  constructor(message) { super(message, "ERR_OPTIFORK_UNAUTHORIZED"); }
}

/** `flush` or `close` ran out of time with exposures or events still unacknowledged. */
class FlushTimeoutError extends OptiForkError {
  constructor(message) { super(message, "ERR_OPTIFORK_FLUSH_TIMEOUT"); }
}

/** A bug inside OptiFork (a Rust panic caught at the boundary). Please report it. */
class InternalError extends OptiForkError {
  constructor(message) { super(message, "ERR_OPTIFORK_INTERNAL"); }
}

function typeError(message) {
  const e = new TypeError(message);
  e.code = "ERR_INVALID_ARG_TYPE";
  return e;
}

function rangeError(message) {
  const e = new RangeError(message);
  e.code = "ERR_OUT_OF_RANGE";
  return e;
}

/** The public error for an error thrown by the addon (its `code` says which). */
function errorFrom(code, message) {
  const [kind, first, ...rest] = String(code).split("|");
  switch (kind) {
    case "ERR_INVALID_ARG_TYPE": return typeError(message);
    case "ERR_OPTIFORK_INVALID_RULESET":
      return new InvalidRulesetError(message, { ruleCode: first ?? null, path: rest.length ? rest.join("|") : null });
    case "ERR_OPTIFORK_INVALID_OPTION": return new InvalidOptionError(message, first ?? null);
    case "ERR_OPTIFORK_NOT_READY": return new NotReadyError(message);
    case "ERR_OPTIFORK_UNAUTHORIZED": return new UnauthorizedError(message);
    case "ERR_OPTIFORK_FLUSH_TIMEOUT": return new FlushTimeoutError(message);
    case "ERR_OPTIFORK_INTERNAL": return new InternalError(message);
    default: return new OptiForkError(message);
  }
}

function translate(e) {
  if (e instanceof Error && typeof e.code === "string" && /^ERR_(OPTIFORK|INVALID_ARG_TYPE)/.test(e.code)) {
    return errorFrom(e.code, e.message);
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const NATIVE = Symbol("optifork.native");
const HANDLE = Symbol("optifork.handle");
const { fastIsEnabled, fastGetBool, fastInternKey } = native;

// Attribute names the addon knows by number (see src/fast.rs): passing an id spares reading
// the name out of V8 on every call. At most MAX_KEYS names; later ones travel as strings.
const KEY_IDS = new Map();
const MAX_KEYS = 4096;
function key(name) {
  const id = KEY_IDS.get(name);
  if (id !== undefined) { return id; }
  if (KEY_IDS.size >= MAX_KEYS) { return name; }
  const next = KEY_IDS.size;
  fastInternKey(next, name);
  KEY_IDS.set(name, next);
  return next;
}
const INTERNAL = Symbol("optifork.internal");

function describe(v) {
  if (v === null) { return "null"; }
  if (Array.isArray(v)) { return "an array"; }
  return typeof v;
}

function isPlainObject(v) {
  if (v === null || typeof v !== "object" || Array.isArray(v)) { return false; }
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A ruleset's JSON text, from an object, a JSON string or UTF-8 bytes. */
function rulesetText(ruleset, what) {
  if (typeof ruleset === "string") { return ruleset; }
  if (ruleset instanceof Uint8Array) { return Buffer.from(ruleset).toString("utf8"); }
  if (isPlainObject(ruleset)) { return JSON.stringify(ruleset); }
  throw typeError(`${what} must be an object or a JSON string, not ${describe(ruleset)}`);
}

function checkTimeout(ms) {
  if (typeof ms !== "number") { throw typeError(`timeoutMs must be a number of milliseconds, not ${describe(ms)}`); }
  if (!Number.isFinite(ms) || ms < 0) { throw rangeError(`timeoutMs must be a number of milliseconds (0 or more), not ${ms}`); }
  return ms;
}

function details(flag, d, defaultValue) {
  return {
    flagKey: flag,
    value: d.hasValue ? d.value : defaultValue,
    variant: d.variant ?? null,
    reason: d.reason,
    errorCode: d.errorCode ?? null,
    ruleIndex: d.ruleIndex ?? null,
  };
}

function status(s) {
  return {
    state: s.state,
    source: s.source ?? null,
    version: s.version ?? null,
    environment: s.environment ?? null,
    updatedAt: s.updatedAt == null ? null : new Date(s.updatedAt),
    confirmedAt: s.confirmedAt == null ? null : new Date(s.confirmedAt),
    lastError: s.lastError ?? null,
    streaming: s.streaming,
    isReady: s.state === "READY",
  };
}

function change(c) {
  return {
    previousVersion: c.previousVersion ?? null,
    version: c.version,
    source: c.source ?? null,
    flags: c.flags,
    configs: c.configs,
    segments: c.segments,
    experiments: c.experiments,
  };
}

// ---------------------------------------------------------------------------------------------
// Evaluation, shared by Engine and Client

// The hot path (isEnabled, getBool) calls the addon's raw functions with the context's own
// enumerable properties flattened into `key, value` arguments: the addon reads them all with
// one Node-API call instead of walking the object property by property. Bigger contexts, and
// anything that is not a plain object, are passed whole.
function isEnabledFast(h, flag, c) {
  if (c === null || typeof c !== "object" || Array.isArray(c)) { return fastIsEnabled(h, flag, c); }
  const k = Object.keys(c);
  switch (k.length) {
    case 0: return fastIsEnabled(h, flag);
    case 1: return fastIsEnabled(h, flag, key(k[0]), c[k[0]]);
    case 2: return fastIsEnabled(h, flag, key(k[0]), c[k[0]], key(k[1]), c[k[1]]);
    case 3: return fastIsEnabled(h, flag, key(k[0]), c[k[0]], key(k[1]), c[k[1]], key(k[2]), c[k[2]]);
    case 4: return fastIsEnabled(h, flag, key(k[0]), c[k[0]], key(k[1]), c[k[1]], key(k[2]), c[k[2]], key(k[3]), c[k[3]]);
    case 5: return fastIsEnabled(h, flag, key(k[0]), c[k[0]], key(k[1]), c[k[1]], key(k[2]), c[k[2]], key(k[3]), c[k[3]], key(k[4]), c[k[4]]);
    case 6: return fastIsEnabled(h, flag, key(k[0]), c[k[0]], key(k[1]), c[k[1]], key(k[2]), c[k[2]], key(k[3]), c[k[3]], key(k[4]), c[k[4]], key(k[5]), c[k[5]]);
    default: return fastIsEnabled(h, flag, c);
  }
}

function getBoolFast(h, d, flag, c) {
  if (c === null || typeof c !== "object" || Array.isArray(c)) { return fastGetBool(h, d, flag, c); }
  const k = Object.keys(c);
  switch (k.length) {
    case 0: return fastGetBool(h, d, flag);
    case 1: return fastGetBool(h, d, flag, key(k[0]), c[k[0]]);
    case 2: return fastGetBool(h, d, flag, key(k[0]), c[k[0]], key(k[1]), c[k[1]]);
    case 3: return fastGetBool(h, d, flag, key(k[0]), c[k[0]], key(k[1]), c[k[1]], key(k[2]), c[k[2]]);
    case 4: return fastGetBool(h, d, flag, key(k[0]), c[k[0]], key(k[1]), c[k[1]], key(k[2]), c[k[2]], key(k[3]), c[k[3]]);
    default: return fastGetBool(h, d, flag, c);
  }
}

/** Evaluation methods. Contexts are plain objects: `targetingKey` (or `user_id`) is the
 * targeting key; every property is an attribute. */
class Evaluates {
  /** Whether a boolean flag is on for this context (false for anything else). */
  isEnabled(flag, context) {
    try { return isEnabledFast(this[HANDLE], flag, context); } catch (e) { throw translate(e); }
  }

  /** The flag's value whatever its type, or `defaultValue` when none is served. */
  getValue(flag, context, defaultValue) {
    try { return this[NATIVE].getValue(flag, context, defaultValue); } catch (e) { throw translate(e); }
  }

  /** A boolean flag's value; `defaultValue` on error or when the flag is not boolean. */
  getBool(flag, context, defaultValue = false) {
    if (typeof defaultValue !== "boolean") { throw typeError(`defaultValue must be a boolean, not ${describe(defaultValue)}`); }
    try { return getBoolFast(this[HANDLE], defaultValue, flag, context); } catch (e) { throw translate(e); }
  }

  /** A string flag's value; `defaultValue` on error or when the flag is not a string. */
  getString(flag, context, defaultValue = "") {
    if (typeof defaultValue !== "string") { throw typeError(`defaultValue must be a string, not ${describe(defaultValue)}`); }
    try { return this[NATIVE].getString(flag, context, defaultValue); } catch (e) { throw translate(e); }
  }

  /** A number flag's value; `defaultValue` on error or when the flag is not a number. */
  getNumber(flag, context, defaultValue = 0) {
    if (typeof defaultValue !== "number") { throw typeError(`defaultValue must be a number, not ${describe(defaultValue)}`); }
    try { return this[NATIVE].getNumber(flag, context, defaultValue); } catch (e) { throw translate(e); }
  }

  /** An integral number flag's value; `defaultValue` otherwise (also for a fraction). */
  getInt(flag, context, defaultValue = 0) {
    if (!Number.isInteger(defaultValue)) { throw typeError(`defaultValue must be an integer, not ${describe(defaultValue)} ${defaultValue}`); }
    try { return this[NATIVE].getInt(flag, context, defaultValue); } catch (e) { throw translate(e); }
  }

  /** A JSON flag's value; `defaultValue` on error or when the flag is not a JSON flag. */
  getJson(flag, context, defaultValue = null) {
    try { return this[NATIVE].getJson(flag, context, defaultValue); } catch (e) { throw translate(e); }
  }

  /** Evaluates a flag: `{flagKey, value, variant, reason, errorCode, ruleIndex}`. */
  evaluateDetails(flag, context, defaultValue = null) {
    try { return details(flag, this[NATIVE].evaluateDetails(flag, context), defaultValue); } catch (e) { throw translate(e); }
  }

  /** A remote config resolved for this context; `null` for an unknown or inactive one. */
  config(name, context) {
    try { return this[NATIVE].config(name, context) ?? null; } catch (e) { throw translate(e); }
  }

  /** The names of the active segments the context belongs to, in ruleset order. */
  segments(context) {
    try { return this[NATIVE].segments(context); } catch (e) { throw translate(e); }
  }

  /** Whether the context is in a segment; `null` when there is no such segment. */
  inSegment(name, context) {
    try { return this[NATIVE].inSegment(name, context) ?? null; } catch (e) { throw translate(e); }
  }

  /** Assigns the context to an experiment's variant: `{experiment, variant, inExperiment, reason}`. */
  assign(experiment, context) {
    try {
      const a = this[NATIVE].assign(experiment, context);
      return { experiment, variant: a.variant, inExperiment: a.inExperiment, reason: a.reason };
    } catch (e) { throw translate(e); }
  }

  /** The names of every flag, in ruleset order. */
  flagNames() {
    return this[NATIVE].flagNames();
  }
}

// ---------------------------------------------------------------------------------------------
// Engine

/** A compiled ruleset evaluated offline (tests, tools, fixed rulesets): no server, no
 * exposures. Build one with `Engine.fromRuleset(ruleset)`. */
class Engine extends Evaluates {
  constructor(token, nativeEngine) {
    super();
    if (token !== INTERNAL) { throw typeError("use Engine.fromRuleset(ruleset) to build an Engine"); }
    Object.defineProperty(this, NATIVE, { value: nativeEngine });
    Object.defineProperty(this, HANDLE, { value: nativeEngine.handle() });
  }

  /** Compiles a ruleset (an object, or its JSON as a string or bytes). Throws
   * `InvalidRulesetError` with the JSON path of the culprit. */
  static fromRuleset(ruleset) {
    const text = rulesetText(ruleset, "ruleset");
    try { return new Engine(INTERNAL, native.NativeEngine.fromJson(text)); } catch (e) { throw translate(e); }
  }

  /** The ruleset's version. */
  get version() { return this[NATIVE].version; }

  /** The ruleset's environment. */
  get environment() { return this[NATIVE].environment; }
}

// ---------------------------------------------------------------------------------------------
// Client

const OPTION_TYPES = {
  pollIntervalMs: "number",
  streaming: "boolean",
  requestTimeoutMs: "number",
  streamIdleTimeoutMs: "number",
  bootstrap: "ruleset",
  bootstrapFile: "string",
  snapshotPath: "string",
  exposureBatchSize: "number",
  flushIntervalMs: "number",
  exposureBufferCapacity: "number",
  exposureDedupCapacity: "number",
  sendContextWithExposures: "boolean",
  headers: "headers",
  backoffInitialMs: "number",
  backoffMaxMs: "number",
  closeTimeoutMs: "number",
  offline: "boolean",
};

function nativeOptions(options) {
  if (options === undefined || options === null) { return {}; }
  if (!isPlainObject(options)) { throw typeError(`options must be an object, not ${describe(options)}`); }
  const out = {};
  for (const [name, value] of Object.entries(options)) {
    const type = OPTION_TYPES[name];
    if (type === undefined) {
      throw typeError(`unknown option ${JSON.stringify(name)}; the options are: ${Object.keys(OPTION_TYPES).join(", ")}`);
    }
    if (value === undefined) { continue; }
    if (type === "ruleset") {
      out[name] = rulesetText(value, name);
    } else if (type === "headers") {
      if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === "string")) {
        throw typeError("headers must be an object of strings");
      }
      out[name] = value;
    } else if (typeof value !== type) {
      throw typeError(`${name} must be a ${type}, not ${describe(value)}`);
    } else {
      out[name] = value;
    }
  }
  return out;
}

/** A client of an OptiFork server: evaluates in process against a ruleset it keeps fresh
 * (streaming, polling), and sends exposures and events back. Call `close()` when done (or
 * use `await using`). */
class Client extends Evaluates {
  #listeners = new Map();

  /**
   * @param {string} url the server, such as `https://flags.example.com`
   * @param {string} sdkKey an SDK key (scope `sdk`)
   * @param {object} [options] see index.d.ts (`ClientOptions`); durations in milliseconds
   */
  constructor(url, sdkKey, options) {
    super();
    if (typeof url !== "string") { throw typeError(`url must be a string, not ${describe(url)}`); }
    if (typeof sdkKey !== "string") { throw typeError(`sdkKey must be a string, not ${describe(sdkKey)}`); }
    const opts = nativeOptions(options);
    let n;
    try { n = new native.NativeClient(url, sdkKey, opts); } catch (e) { throw translate(e); }
    Object.defineProperty(this, NATIVE, { value: n });
    Object.defineProperty(this, HANDLE, { value: n.handle() });
  }

  /** Resolves with the status once the server's ruleset is served; rejects with
   * `NotReadyError` after `timeoutMs`, or `UnauthorizedError` at once if the key is refused.
   * Waits off the event loop. */
  async waitUntilReady(timeoutMs = 5000) {
    let r;
    try { r = await this[NATIVE].waitUntilReady(checkTimeout(timeoutMs)); } catch (e) { throw translate(e); }
    if (r.code) { throw errorFrom(r.code, r.message); }
    return status(r.status);
  }

  /** Sends every exposure and event recorded so far; resolves once the server acknowledged
   * them, rejects with `FlushTimeoutError` after `timeoutMs`. */
  async flush(timeoutMs = 5000) {
    let r;
    try { r = await this[NATIVE].flush(checkTimeout(timeoutMs)); } catch (e) { throw translate(e); }
    if (r.code) { throw errorFrom(r.code, r.message); }
  }

  /** Stops the background work after a last flush (within the `closeTimeoutMs` option, 5 s by
   * default). Evaluation keeps working on the last ruleset; events tracked afterwards are
   * dropped. Idempotent. */
  async close() {
    let r;
    try { r = await this[NATIVE].close(); } catch (e) { throw translate(e); }
    if (r.code) { throw errorFrom(r.code, r.message); }
  }

  /** `await using client = new Client(...)` closes it at the end of the block. */
  async [Symbol.asyncDispose ?? Symbol.for("nodejs.asyncDispose")]() {
    await this.close();
  }

  /** How fresh the served ruleset is: `{state, source, version, environment, updatedAt,
   * confirmedAt, lastError, streaming, isReady}`. */
  status() {
    return status(this[NATIVE].status());
  }

  /** The served ruleset's version, or `null`. */
  get version() {
    return this[NATIVE].version ?? null;
  }

  /** Records a metric event (a conversion, a purchase's value) for the context's user; sent
   * with the exposures. Events of contexts without a targeting key are dropped and counted
   * (`stats().droppedInvalid`). */
  track(event, context, value, properties) {
    if (typeof event !== "string") { throw typeError(`event must be a string, not ${describe(event)}`); }
    if (event === "") { throw rangeError("event must not be empty"); }
    if (value !== undefined && value !== null) {
      if (typeof value !== "number") { throw typeError(`value must be a number, not ${describe(value)}`); }
      if (!Number.isFinite(value)) { throw rangeError(`value must be a finite number, not ${value}`); }
    }
    if (properties !== undefined && properties !== null && !isPlainObject(properties)) {
      throw typeError(`properties must be an object, not ${describe(properties)}`);
    }
    try {
      this[NATIVE].track(event, context, value ?? undefined, properties ?? undefined);
    } catch (e) { throw translate(e); }
  }

  /** Calls `callback(change)` after each new ruleset is installed, with the names of the
   * flags, configs, segments and experiments that changed. Runs on the event loop; an
   * exception in it is reported as a process warning and does not stop later updates.
   * Does not keep the process alive. Returns a function that removes the callback. */
  onChange(callback) {
    if (typeof callback !== "function") { throw typeError(`callback must be a function, not ${describe(callback)}`); }
    const id = this[NATIVE].onChange((c) => {
      try {
        callback(change(c));
      } catch (e) {
        process.emitWarning(`an OptiFork onChange callback threw: ${e && e.stack ? e.stack : e}`, {
          code: "OPTIFORK_CALLBACK_ERROR",
        });
      }
    });
    const ids = this.#listeners.get(callback) ?? [];
    ids.push(id);
    this.#listeners.set(callback, ids);
    return () => this.#remove(callback, id);
  }

  /** Removes a callback given to `onChange`; returns whether it was registered. */
  offChange(callback) {
    const ids = this.#listeners.get(callback) ?? [];
    let removed = false;
    for (const id of [...ids]) { removed = this.#remove(callback, id) || removed; }
    return removed;
  }

  #remove(callback, id) {
    const ids = this.#listeners.get(callback) ?? [];
    const i = ids.indexOf(id);
    if (i < 0) { return false; }
    ids.splice(i, 1);
    if (ids.length === 0) { this.#listeners.delete(callback); }
    return this[NATIVE].removeListener(id);
  }

  /** Installs a ruleset given by the application (an object or JSON) as if it came from the
   * server; returns what changed. Throws `InvalidRulesetError`, keeping the current ruleset,
   * when it does not compile. */
  updateRuleset(ruleset) {
    const text = rulesetText(ruleset, "ruleset");
    try { return change(this[NATIVE].updateRuleset(text)); } catch (e) { throw translate(e); }
  }

  /** The client's counters (requests, updates, exposures queued, sent, dropped, ...). */
  stats() {
    return { ...this[NATIVE].stats() };
  }
}

/** The bucket (0-9999) of `unit` under `salt`: the hash behind every percentage. */
function bucket(salt, unit) {
  try { return native.bucket(salt, unit); } catch (e) { throw translate(e); }
}

module.exports = {
  Client,
  Engine,
  bucket,
  OptiForkError,
  InvalidRulesetError,
  InvalidOptionError,
  NotReadyError,
  UnauthorizedError,
  FlushTimeoutError,
  InternalError,
  /** @internal for the tests: a Rust panic must surface as InternalError. */
  _panicForTests() {
    try { return native.panicForTests(); } catch (e) { throw translate(e); }
  },
};
