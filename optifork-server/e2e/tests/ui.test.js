// End-to-end tests of the admin UI in headless Chromium, against the real server binary.
// Each main page is screenshotted into e2e/screenshots/ (kept by the run, not committed).
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { ADMIN_KEY, startServer, startBrowser, api, shot } = require("../lib/harness");

const FLAG = "new_checkout";
const SEGMENT = "premium_users";
const CONFIG = "checkout_limits";
const EXPERIMENT = "checkout_flow";

describe("OptiFork admin UI", { timeout: 300000 }, () => {
  let server;
  let browser;
  let page;
  let base;

  before(async () => {
    server = await startServer();
    base = server.url;
    browser = await startBrowser();
    page = browser.context.pages()[0] || (await browser.context.newPage());
    page.setDefaultTimeout(15000);
  });

  after(async () => {
    if (browser) { await browser.close(); }
    if (server) { await server.stop(); }
  });

  const go = (p) => page.goto(base + p);
  const evaluateFlag = async (user, attrs = "") =>
    (await api(base, "GET", `/flags/${FLAG}?user_id=${user}${attrs}`)).body;

  it("sends visitors to the login page and refuses bad and SDK keys", async () => {
    await go("/");
    assert.match(page.url(), /\/ui\/login\?next=/);
    await shot(page, "01-login");

    await page.fill("#key", "ofk_not_a_key");
    await page.click("button[type=submit]");
    await page.waitForSelector("#key-error");
    assert.match(await page.textContent("#key-error"), /not valid/);

    const sdk = await api(base, "POST", "/keys", { name: "e2e probe", scope: "sdk", environment: "production" });
    assert.equal(sdk.status, 201);
    await page.fill("#key", sdk.body.key);
    await page.click("button[type=submit]");
    await page.waitForSelector("#key-error");
    assert.match(await page.textContent("#key-error"), /SDK key/);
    await shot(page, "02-login-refused");
  });

  it("logs in with an admin key", async () => {
    await page.fill("#key", ADMIN_KEY);
    await Promise.all([page.waitForURL("**/ui/flags"), page.click("button[type=submit]")]);
    assert.equal(await page.textContent("h1"), "Feature flags");
    const cookies = await browser.context.cookies(base + "/ui/flags");
    const session = cookies.find((c) => c.name === "ofk_session");
    assert.ok(session, "a session cookie");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    await shot(page, "03-flags-empty");
  });

  it("creates a segment and tests a context against it", async () => {
    await go("/ui/segments/_new");
    await page.fill("#name", SEGMENT);
    await page.fill("#description", "Paying customers on the premium tier");
    await page.fill("#criteria", '{"tier": "premium"}');
    await Promise.all([page.waitForURL(`**/ui/segments/${SEGMENT}`), page.click("form.editor button[type=submit]")]);
    assert.match(await page.textContent(".flash-ok"), /Saved segment/);

    await page.fill("#test-context", '{"user_id": "u1", "tier": "premium"}');
    await page.click("form[data-segment-test] button[type=submit]");
    await page.waitForSelector(`[data-test-result] .badge:text("${SEGMENT}")`);
    assert.match(await page.textContent("[data-test-result]"), /Matches premium_users/);
    await shot(page, "04-segment-test-match");

    await page.fill("#test-context", '{"user_id": "u2", "tier": "free"}');
    await page.click("form[data-segment-test] button[type=submit]");
    await page.waitForSelector('[data-test-result]:has-text("in no segment")');

    // The segments list has the same box; matching rows get a badge.
    await go("/ui/segments");
    await page.fill("#test-context", '{"tier": "premium"}');
    await page.click("form[data-segment-test] button[type=submit]");
    await page.waitForSelector(`[data-segment-row="${SEGMENT}"] [data-match-badge]:visible`);
    await shot(page, "05-segments");
  });

  it("creates a flag with a rule", async () => {
    await go("/ui/flags");
    await Promise.all([page.waitForURL("**/ui/flags/_new"), page.click('a:has-text("New flag")')]);
    await page.fill("#name", FLAG);
    await page.fill("#description", "One-page checkout");
    await page.fill("#tags", "checkout, web");
    await page.fill("#rollout", "0");
    await page.check("#is_enabled");
    await page.click('button[data-add-row="tpl-rule"]');
    const rule = page.locator("#rules li.rule").last();
    await rule.locator('input[name="rule_description"]').fill("North America");
    await rule.locator('textarea[name="rule_condition"]').fill('{"country": {"$in": ["US", "CA"]}}');
    await rule.locator('select[name="rule_serve"]').selectOption("on");
    // A second rule, built with the segment picker, then moved to the top.
    await page.click('button[data-add-row="tpl-rule"]');
    const second = page.locator("#rules li.rule").last();
    await second.locator("[data-segment-pick]").selectOption(SEGMENT);
    await second.locator("button[data-insert-segment]").click();
    assert.deepEqual(JSON.parse(await second.locator("textarea").inputValue()), { $segment: SEGMENT });
    await second.locator('select[name="rule_serve"]').selectOption("on");
    await second.locator('button[data-move="up"]').click();
    assert.equal(await page.locator("#rules li.rule [data-rule-num]").first().textContent(), "Rule 1");
    await shot(page, "06-flag-new");
    await Promise.all([page.waitForURL(`**/ui/flags/${FLAG}`), page.click("#flag-form button[type=submit]")]);
    assert.match(await page.textContent(".flash-ok"), /Created flag new_checkout/);

    const def = await api(base, "GET", `/flags/${FLAG}/definition`);
    assert.equal(def.status, 200);
    assert.deepEqual(def.body.rules.map((r) => r.condition), [
      { $segment: SEGMENT },
      { country: { $in: ["US", "CA"] } },
    ]);
    assert.equal(def.body.is_enabled, true);
    assert.deepEqual(def.body.tags, ["checkout", "web"]);
    await shot(page, "07-flag-editor");
  });

  it("shows a bad condition's error at its field, keeping the input", async () => {
    await go(`/ui/flags/${FLAG}`);
    const area = page.locator('textarea[name="rule_condition"]').nth(1);
    const bad = '{"age": {"$gtx": 18}}';
    await area.fill(bad);
    // Live JSON check: valid JSON, so it reaches the server, which knows the operator is bad.
    await page.click("#flag-form button[type=submit]");
    const error = page.locator('[data-error-for="$.rules[1].condition"]');
    await error.waitFor();
    assert.match(await error.textContent(), /\$gtx/);
    assert.match(await error.textContent(), /\$\.rules\[1\]\.condition\.age\["\$gtx"\]/);
    const again = page.locator('textarea[name="rule_condition"]').nth(1);
    assert.equal(await again.inputValue(), bad);
    assert.equal(await again.getAttribute("aria-invalid"), "true");
    // The keyboard is taken to the field in error.
    assert.equal(await again.evaluate((el) => el === document.activeElement), true);
    await shot(page, "08-flag-error-at-field");
    // Nothing was saved.
    const def = await api(base, "GET", `/flags/${FLAG}/definition`);
    assert.deepEqual(def.body.rules[1].condition, { country: { $in: ["US", "CA"] } });

    // Malformed JSON is caught while typing.
    await again.fill('{"age": ');
    await page.waitForSelector(".json-status.bad");
  });

  it("flips the kill switch and the evaluation API follows", async () => {
    const before = await evaluateFlag("user-1", "&country=US");
    assert.equal(before.enabled, true);
    await go("/ui/flags");
    const sw = page.locator(`button.switch[data-flag="${FLAG}"]`);
    assert.equal(await sw.getAttribute("aria-checked"), "true");
    await sw.click();
    await page.waitForSelector(`button.switch[data-flag="${FLAG}"][aria-checked="false"]`);
    const off = await evaluateFlag("user-1", "&country=US");
    assert.equal(off.enabled, false);
    assert.equal(off.reason, "DISABLED");
    await shot(page, "09-flags-kill-switch-off");
    // And on again, from the keyboard.
    await sw.focus();
    await page.keyboard.press("Space");
    await page.waitForSelector(`button.switch[data-flag="${FLAG}"][aria-checked="true"]`);
    const on = await evaluateFlag("user-1", "&country=US");
    assert.equal(on.enabled, true);
    // Search and tag filter.
    await api(base, "POST", "/flags", { name: "dark_mode", description: "Dark theme", is_enabled: false, tags: ["ui"] });
    await go("/ui/flags?tag=checkout");
    assert.equal(await page.locator("tbody tr").count(), 1);
    await go("/ui/flags?q=dark");
    assert.equal(await page.locator("tbody tr").count(), 1);
    assert.match(await page.textContent("tbody"), /dark_mode/);
  });

  it("lists a flag's exposures", async () => {
    for (const u of ["alice", "bob", "carol"]) { await evaluateFlag(u, "&country=CA"); }
    let text = "";
    for (let i = 0; i < 50 && !/carol/.test(text); i++) {
      if (i > 0) { await page.waitForTimeout(100); }
      await go(`/ui/flags/${FLAG}/exposures`);
      text = await page.textContent("main");
    }
    assert.match(text, /alice/);
    assert.match(text, /carol/);
    assert.ok((await page.locator("tbody tr").count()) >= 6);
    await shot(page, "10-flag-exposures");
  });

  it("edits a config as JSON, with an override", async () => {
    await go("/ui/configs/_new");
    await page.fill("#name", CONFIG);
    await page.fill("#config_data", '{"max_items": 20, ');
    await page.waitForSelector(".json-status.bad");
    await page.fill("#config_data", '{"max_items": 20, "currencies": ["USD", "EUR"]}');
    await page.waitForSelector(".json-status.ok");
    await page.click('button[data-add-row="tpl-override"]');
    const ov = page.locator("#overrides li.rule").last();
    await ov.locator('select[name="override_segment"]').selectOption(SEGMENT);
    await ov.locator('textarea[name="override_data"]').fill('{"max_items": 100}');
    await Promise.all([page.waitForURL(`**/ui/configs/${CONFIG}`), page.click("form.editor button[type=submit]")]);
    const resolved = await api(base, "GET", `/configs/${CONFIG}?user_id=u&tier=premium`);
    assert.equal(resolved.body.config_data.max_items, 100);
    await shot(page, "11-config-editor");
  });

  it("creates an experiment, receives assignments and events, and shows its results", async () => {
    await go("/ui/experiments/_new");
    await page.fill("#name", EXPERIMENT);
    await page.fill("#description", "One-page checkout raises purchases");
    await page.selectOption("#flag", FLAG);
    await page.check("#start_now");
    await page.click('button[data-add-row="tpl-metric"]');
    const m = page.locator("#metrics .row-item").last();
    await m.locator('input[name="metric_name"]').fill("revenue");
    await m.locator('input[name="metric_event"]').fill("purchase");
    await m.locator('select[name="metric_type"]').selectOption("sum");
    await shot(page, "12-experiment-new");
    await Promise.all([page.waitForURL(`**/ui/experiments/${EXPERIMENT}`), page.click("form.editor button[type=submit]")]);
    assert.match(await page.textContent("h1"), /Running/);
    const def = await api(base, "GET", `/experiments/${EXPERIMENT}`);
    assert.deepEqual(def.body.traffic_splits, { control: 50, treatment: 50 });

    // Assignments through the API, then a skewed batch of exposures and events from an SDK.
    const assigned = await api(base, "GET", `/experiments/${EXPERIMENT}/assign?user_id=someone`);
    assert.equal(assigned.status, 200);
    const sdk = (await api(base, "POST", "/keys", { name: "e2e sdk", scope: "sdk", environment: "production" })).body.key;
    const exposures = [];
    const events = [];
    let seed = 42;
    const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
    for (let i = 0; i < 1000; i++) {
      const variant = random() < 0.7 ? "control" : "treatment"; // about 70/30 against a 50/50 split
      const user = `user-${i}`;
      exposures.push({ experiment: EXPERIMENT, user_id: user, variant, timestamp: "2026-01-01T00:00:00Z" });
      if (random() < (variant === "control" ? 0.10 : 0.16)) {
        events.push({ event: "purchase", user_id: user, value: Math.round(2000 + random() * 8000) / 100, timestamp: "2026-01-02T00:00:00Z" });
      }
    }
    assert.equal((await api(base, "POST", "/sdk/v1/exposures", { batch_id: "e2e-exp", exposures }, sdk)).status, 200);
    assert.equal((await api(base, "POST", "/sdk/v1/events", { batch_id: "e2e-ev", events }, sdk)).status, 200);

    await go(`/ui/experiments/${EXPERIMENT}/results`);
    assert.ok(await page.locator("[data-srm-warning]").isVisible(), "the sample-ratio warning");
    assert.match(await page.textContent("[data-srm-warning]"), /Sample ratio mismatch/);
    assert.equal(await page.locator("svg.ci-wide").count(), 2, "a chart per metric");
    assert.ok(await page.locator("svg.ci-wide").first().isVisible());
    assert.ok((await page.locator("svg.ci-wide rect").count()) >= 2, "interval bars");
    assert.match(await page.textContent("main"), /treatment/);
    await shot(page, "13-experiment-results");

    // Stopping asks first.
    await go(`/ui/experiments/${EXPERIMENT}`);
    page.once("dialog", (d) => d.dismiss());
    await page.click('form[action$="/stop"] button');
    await page.waitForTimeout(200);
    assert.equal((await api(base, "GET", `/experiments/${EXPERIMENT}`)).body.is_active, true);
    page.once("dialog", (d) => d.accept());
    await Promise.all([page.waitForLoadState("load"), page.click('form[action$="/stop"] button')]);
    await page.waitForSelector(".flash-ok");
    assert.equal((await api(base, "GET", `/experiments/${EXPERIMENT}`)).body.is_active, false);
    await shot(page, "14-experiment-editor");
  });

  it("shows the audit entries with a before/after diff", async () => {
    await go(`/ui/audit?entity_type=flag&entity_name=${FLAG}`);
    const entries = page.locator("[data-audit-entry]");
    assert.ok((await entries.count()) >= 3, "create and two kill-switch updates");
    const first = entries.first();
    assert.match(await first.textContent(), /update/);
    assert.ok(await first.locator(".diff-add").first().isVisible());
    assert.match(await first.locator(".diff-add").allTextContents().then((t) => t.join("\n")), /"is_enabled": true/);
    assert.match(await first.locator(".diff-del").allTextContents().then((t) => t.join("\n")), /"is_enabled": false/);
    await shot(page, "15-audit");
  });

  it("creates an API key, shows it once, and revokes it after confirmation", async () => {
    await go("/ui/keys");
    await page.fill("#key-name", "checkout-service");
    await page.selectOption("#key-scope", "sdk");
    await page.click('form[action="/ui/keys"] button[type=submit]');
    const shown = await page.locator("[data-new-key]").inputValue();
    assert.match(shown, /^ofk_[A-Za-z0-9]+_[A-Za-z0-9]+$/);
    await shot(page, "16-keys-created");
    assert.equal((await api(base, "GET", "/sdk/v1/ruleset", null, shown)).status, 200);
    await go("/ui/keys");
    assert.equal(await page.locator("[data-new-key]").count(), 0, "shown once");
    assert.doesNotMatch(await page.content(), new RegExp(shown));

    const id = shown.split("_")[1];
    const revoke = page.locator(`form[action="/ui/keys/${id}/revoke"] button`);
    page.once("dialog", (d) => d.dismiss());
    await revoke.click();
    await page.waitForTimeout(200);
    assert.equal((await api(base, "GET", "/sdk/v1/ruleset", null, shown)).status, 200);
    page.once("dialog", (d) => { assert.match(d.message(), /Revoke key checkout-service/); d.accept(); });
    await Promise.all([page.waitForURL("**/ui/keys"), revoke.click()]);
    await page.waitForSelector(".flash-ok");
    assert.equal((await api(base, "GET", "/sdk/v1/ruleset", null, shown)).status, 401);
    await shot(page, "17-keys");
  });

  it("asks before deleting a flag", async () => {
    await api(base, "POST", "/flags", { name: "old_banner", is_enabled: true });
    await go("/ui/flags/old_banner");
    page.once("dialog", (d) => d.dismiss());
    await page.click('form[action$="/delete"] button');
    await page.waitForTimeout(200);
    assert.equal((await api(base, "GET", "/flags/old_banner/definition")).status, 200);
    page.once("dialog", (d) => d.accept());
    await Promise.all([page.waitForURL("**/ui/flags"), page.click('form[action$="/delete"] button')]);
    assert.match(await page.textContent(".flash-ok"), /Deleted flag old_banner/);
    assert.equal((await api(base, "GET", "/flags/old_banner/definition")).status, 404);
  });

  it("gives copy-ready integration code for the selected entity", async () => {
    await go(`/ui/guide?flag=${FLAG}`);
    const rust = await page.textContent("#code-rust");
    assert.match(rust, new RegExp(`Client::builder\\("${base.replace(/[.]/g, "\\.")}"`));
    assert.match(rust, /client\.is_enabled\("new_checkout", &ctx\)/);
    await page.click("#tab-python");
    assert.ok(await page.locator("#panel-python").isVisible());
    assert.ok(!(await page.locator("#panel-rust").isVisible()));
    assert.match(await page.textContent("#code-python"), /optifork\.Client\(/);
    // Arrow keys move between tabs.
    await page.focus("#tab-python");
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.evaluate(() => document.activeElement.id), "tab-node");
    assert.match(await page.textContent("#code-node"), /new Client\(/);
    for (const id of ["go", "java", "curl"]) {
      assert.match(await page.textContent(`#code-${id}`), new RegExp(FLAG));
    }
    assert.match(await page.textContent("#code-go"), /ofrep\.NewProvider/);
    assert.match(await page.textContent("#code-curl"), /\/ofrep\/v1\/evaluate\/flags\/new_checkout/);
    await page.click("#tab-rust");
    await shot(page, "18-guide-flag");
    await go(`/ui/guide?experiment=${EXPERIMENT}`);
    assert.match(await page.textContent("#code-rust"), /client\.assign\("checkout_flow", &ctx\)/);
    await shot(page, "19-guide-experiment");
  });

  it("switches environments", async () => {
    await go("/ui/environments");
    await page.fill("#env-name", "staging");
    await Promise.all([page.waitForURL("**/ui/environments"), page.click('form[action="/ui/environments"] button')]);
    await page.selectOption("#env-select", "staging");
    await page.waitForSelector('.env-pill:text("staging")');
    await shot(page, "20-environments");
    await go("/ui/flags");
    assert.match(await page.textContent("main"), /No flags yet/);
    await page.selectOption("#env-select", "production");
    await page.waitForSelector('.env-pill:text("production")');
    assert.match(await page.textContent("main"), /new_checkout/);
  });

  it("is usable from the keyboard, with a visible focus", async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await go("/ui/flags");
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    const seen = [];
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press("Tab");
      const tag = await page.evaluate(() => document.activeElement.tagName);
      if (tag === "BODY") { break; } // past the last control
      seen.push(await page.evaluate(() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        return {
          what: el.id || el.getAttribute("aria-label") || el.textContent.trim().slice(0, 40),
          tag: el.tagName,
          focusVisible: el.matches(":focus-visible"),
          outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0,
        };
      }));
    }
    const names = seen.map((s) => s.what);
    for (const wanted of ["Skip to content", "Feature flags", "Experiments", "env-select", "New flag", "q", "tag"]) {
      assert.ok(names.some((n) => n.includes(wanted)), `Tab reaches ${wanted}: ${names.join(" | ")}`);
    }
    assert.ok(names.some((n) => n.startsWith("new_checkout is on")), "Tab reaches the kill switch");
    for (const s of seen) {
      assert.ok(s.focusVisible && s.outline, `focus is visible on ${s.tag} ${s.what}`);
    }
    // The skip link jumps to the content.
    await go("/ui/flags");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement.id), "main");
    // Every control of the flag editor has a label.
    for (const p of [`/ui/flags/${FLAG}`, `/ui/experiments/${EXPERIMENT}`, `/ui/configs/${CONFIG}`, "/ui/keys"]) {
      await go(p);
      const unlabeled = await page.evaluate(() => Array.from(document.querySelectorAll("main input:not([type=hidden]), main select, main textarea"))
        .filter((el) => !el.closest("template") && !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
        .map((el) => el.name || el.id));
      assert.deepEqual(unlabeled, [], `unlabeled controls on ${p}`);
    }
  });

  it("never scrolls sideways at 1280 px or on a 390 px phone", async () => {
    const pages = [
      ["flags", "/ui/flags"],
      ["flag", `/ui/flags/${FLAG}`],
      ["flag-new", "/ui/flags/_new"],
      ["exposures", `/ui/flags/${FLAG}/exposures`],
      ["configs", "/ui/configs"],
      ["config", `/ui/configs/${CONFIG}`],
      ["segments", "/ui/segments"],
      ["segment", `/ui/segments/${SEGMENT}`],
      ["experiments", "/ui/experiments"],
      ["experiment", `/ui/experiments/${EXPERIMENT}`],
      ["results", `/ui/experiments/${EXPERIMENT}/results`],
      ["audit", "/ui/audit"],
      ["keys", "/ui/keys"],
      ["environments", "/ui/environments"],
      ["guide", `/ui/guide?flag=${FLAG}`],
    ];
    for (const [width, height] of [[1280, 800], [390, 844]]) {
      await page.setViewportSize({ width, height });
      for (const [name, p] of pages) {
        await go(p);
        const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
        assert.ok(scroll <= inner, `${p} at ${width}px scrolls sideways: ${scroll} > ${inner}`);
        await shot(page, `w${width}-${name}`);
      }
    }
    // The phone menu opens and closes.
    await go("/ui/flags");
    assert.ok(!(await page.locator("#main-nav").isVisible()));
    await page.click(".nav-toggle");
    assert.ok(await page.locator("#main-nav").isVisible());
    assert.equal(await page.getAttribute(".nav-toggle", "aria-expanded"), "true");
    await shot(page, "w390-menu-open", { full: false });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("logs out", async () => {
    await go("/ui/flags");
    await Promise.all([page.waitForURL("**/ui/login"), page.click('form[action="/ui/logout"] button')]);
    assert.match(await page.textContent("main"), /logged out/);
    await go("/ui/flags");
    assert.match(page.url(), /\/ui\/login/);
  });
});
