// OptiFork admin UI: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");

  function $(sel, el) { return (el || document).querySelector(sel); }
  function $all(sel, el) { return Array.prototype.slice.call((el || document).querySelectorAll(sel)); }
  function announce(msg) {
    var live = $("#live");
    if (live) { live.textContent = ""; setTimeout(function () { live.textContent = msg; }, 30); }
  }
  function formBody(form) { return new URLSearchParams(new FormData(form)); }
  function csrfOf(form) { var i = form.querySelector('input[name="_csrf"]'); return i ? i.value : ""; }

  // Phone navigation.
  var toggle = $(".nav-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var sidebar = toggle.closest(".sidebar");
      var open = sidebar.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // Selects that apply at once (environment switcher, guide target).
  $all("form[data-autosubmit] select").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.requestSubmit ? sel.form.requestSubmit() : sel.form.submit(); });
  });

  // A confirmation before destructive actions.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var msg = form.getAttribute && form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); ev.stopImmediatePropagation(); }
  }, true);

  // The kill switch: flips without reloading the page.
  $all("form[data-toggle]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var btn = form.querySelector(".switch");
      var input = form.querySelector('input[name="enabled"]');
      var want = input.value === "true";
      btn.setAttribute("aria-busy", "true");
      fetch(form.action, {
        method: "POST", credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrfOf(form) },
        body: formBody(form)
      }).then(function (r) {
        return r.json().then(function (j) { if (!r.ok) { throw new Error((j.error && j.error.message) || r.statusText); } return j; });
      }).then(function (j) {
        var on = !!j.is_enabled;
        var name = btn.getAttribute("data-flag");
        btn.setAttribute("aria-checked", on ? "true" : "false");
        btn.setAttribute("aria-label", name + " is " + (on ? "on" : "off") + "; turn it " + (on ? "off" : "on"));
        btn.querySelector(".switch-text").textContent = on ? "On" : "Off";
        input.value = on ? "false" : "true";
        announce("Flag " + name + " is now " + (on ? "on" : "off") + ".");
      }).catch(function (e) {
        announce("Could not change the flag: " + e.message);
        window.alert("Could not change the flag: " + e.message);
      }).then(function () { btn.removeAttribute("aria-busy"); });
      return want;
    });
  });

  // Live JSON validation of JSON text areas.
  function checkJson(area) {
    var status = area.closest(".field") && area.closest(".field").querySelector("[data-json-status]");
    if (!status) { return; }
    var text = area.value.trim();
    if (!text) { status.textContent = ""; status.className = "json-status"; return; }
    try {
      var v = JSON.parse(text);
      if (v === null || typeof v !== "object" || Array.isArray(v)) { throw new Error("must be a JSON object, like {\"country\": \"US\"}"); }
      status.textContent = "✓ Valid JSON"; status.className = "json-status ok";
    } catch (e) {
      status.textContent = "✗ " + e.message; status.className = "json-status bad";
    }
  }
  document.addEventListener("input", function (ev) {
    if (ev.target.matches && ev.target.matches("textarea[data-json]")) { checkJson(ev.target); }
    if (ev.target.matches && ev.target.matches("[data-variant-name]")) { refreshVariantOptions(); }
  });
  // (A field the server refused keeps its message until it is edited.)
  $all("textarea[data-json]").forEach(function (a) {
    if (a.value.trim() && a.getAttribute("aria-invalid") !== "true") { checkJson(a); }
  });

  // JSON text areas grow with their content.
  function fit(area) {
    var lines = area.value.split("\n").length;
    var min = parseInt(area.getAttribute("data-min-rows") || area.getAttribute("rows") || "3", 10);
    area.setAttribute("data-min-rows", String(min));
    area.rows = Math.max(min, Math.min(lines + 1, 24));
  }
  $all("textarea.json-input").forEach(fit);
  document.addEventListener("input", function (ev) { if (ev.target.matches && ev.target.matches("textarea.json-input")) { fit(ev.target); } });

  // Repeated rows: add, remove, move, renumber.
  function renumber(list) {
    $all("[data-rule-num]", list).forEach(function (el, i) {
      var base = el.getAttribute("data-base") || el.textContent.replace(/\s+\d+$/, "");
      el.setAttribute("data-base", base);
      el.textContent = base + " " + (i + 1);
    });
    var note = list.parentNode && list.parentNode.querySelector("[data-empty-note]");
    if (note) { note.hidden = list.children.length > 0; }
  }
  $all(".rules").forEach(renumber);
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target.closest("button") : null;
    if (!t) { return; }
    if (t.hasAttribute("data-add-row")) {
      var tpl = document.getElementById(t.getAttribute("data-add-row"));
      var into = document.getElementById(t.getAttribute("data-into"));
      var node = tpl.content.firstElementChild.cloneNode(true);
      into.appendChild(node);
      renumber(into);
      wireSplit(node);
      refreshVariantOptions();
      var first = node.querySelector("input, textarea, select");
      if (first) { first.focus(); }
    } else if (t.hasAttribute("data-remove-row")) {
      var row = t.closest("[data-row]");
      var list = row.parentNode;
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber(list);
      refreshVariantOptions();
      var focusTo = next ? next.querySelector("input, textarea, select") : list.parentNode.querySelector("[data-add-row]");
      if (focusTo) { focusTo.focus(); }
      announce("Removed.");
    } else if (t.hasAttribute("data-move")) {
      var item = t.closest("[data-row]");
      if (t.getAttribute("data-move") === "up" && item.previousElementSibling) {
        item.parentNode.insertBefore(item, item.previousElementSibling);
      } else if (t.getAttribute("data-move") === "down" && item.nextElementSibling) {
        item.parentNode.insertBefore(item.nextElementSibling, item);
      }
      renumber(item.parentNode);
      t.focus();
      var num = item.querySelector("[data-rule-num]");
      announce("Moved to " + (num ? num.textContent : "new position") + ".");
    } else if (t.hasAttribute("data-insert-segment")) {
      var wrap = t.closest(".field");
      var area = wrap.querySelector("textarea");
      var seg = wrap.querySelector("[data-segment-pick]").value;
      var cond = {};
      try { cond = area.value.trim() ? JSON.parse(area.value) : {}; } catch (e) { window.alert("Fix the condition's JSON first."); return; }
      if (cond === null || typeof cond !== "object" || Array.isArray(cond)) { cond = {}; }
      if (Object.prototype.hasOwnProperty.call(cond, "$segment")) {
        cond = { "$and": [cond, { "$segment": seg }] };
      } else {
        cond["$segment"] = seg;
      }
      area.value = JSON.stringify(cond, null, 2);
      checkJson(area);
      fit(area);
      announce("Segment " + seg + " added to the condition.");
    } else if (t.hasAttribute("data-copy")) {
      var src = $(t.getAttribute("data-copy"));
      var text = src.value !== undefined && src.tagName === "INPUT" ? src.value : src.textContent;
      var done = function () { var old = t.textContent; t.textContent = "Copied"; announce("Copied to the clipboard."); setTimeout(function () { t.textContent = old; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(src, text); done(); });
      } else { fallbackCopy(src, text); done(); }
    }
  });
  function fallbackCopy(src, text) {
    var ta = document.createElement("textarea");
    ta.value = text; ta.setAttribute("readonly", ""); ta.className = "sr-only";
    document.body.appendChild(ta); ta.select();
    try { document.execCommand("copy"); } catch (e) { /* the text stays selected */ }
    ta.remove();
  }

  // Serve selects: the split field shows only for "Percentage split…".
  function wireSplit(scope) {
    $all("select[data-serve]", scope).forEach(function (sel) {
      if (sel.hasAttribute("data-no-split")) { return; }
      var holder = sel.closest(".serve-row") || sel.closest(".grid-2");
      var field = holder && holder.querySelector("[data-split-field]");
      if (!field) { return; }
      var sync = function () { field.hidden = sel.value !== "__split__"; };
      sel.addEventListener("change", sync);
      sync();
    });
  }
  wireSplit(document);

  // When variants are renamed, added or removed, the serve menus follow.
  function refreshVariantOptions() {
    var names = $all("[data-variant-name]").map(function (i) { return i.value.trim(); }).filter(Boolean);
    if (!$("[data-variant-name]") && !$("#variants")) { return; }
    $all("select[data-serve]").forEach(function (sel) {
      var current = sel.value;
      var keep = $all("option", sel).filter(function (o) { return o.value === "" || o.value === "__split__"; });
      sel.textContent = "";
      if (keep[0] && keep[0].value === "") { sel.appendChild(keep[0]); }
      names.forEach(function (n) { var o = document.createElement("option"); o.value = n; o.textContent = n; sel.appendChild(o); });
      keep.forEach(function (o) { if (o.value === "__split__") { sel.appendChild(o); } });
      sel.value = names.indexOf(current) >= 0 || current === "__split__" || current === "" ? current : "";
    });
  }

  // "Test a context": which segments match.
  $all("form[data-segment-test]").forEach(function (form) {
    var out = form.parentNode.querySelector("[data-test-result]");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      fetch(form.action, {
        method: "POST", credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrfOf(form) },
        body: formBody(form)
      }).then(function (r) {
        return r.json().then(function (j) { if (!r.ok) { throw new Error((j.error && j.error.message) || r.statusText); } return j; });
      }).then(function (j) {
        out.textContent = "";
        var p = document.createElement("p");
        var current = document.querySelector("#name") && document.querySelector("#name").value;
        if (!j.segments.length) {
          p.textContent = "This context is in no segment.";
          out.appendChild(p);
        } else {
          p.innerHTML = "<strong>In " + j.segments.length + " segment" + (j.segments.length === 1 ? "" : "s") + ":</strong>";
          out.appendChild(p);
          var ul = document.createElement("ul");
          j.segments.forEach(function (s) {
            var li = document.createElement("li");
            var b = document.createElement("span");
            b.className = "badge " + (s === current ? "badge-success" : "badge-match");
            b.textContent = s;
            li.appendChild(b); ul.appendChild(li);
          });
          out.appendChild(ul);
        }
        if (current) {
          var me = document.createElement("p");
          me.className = "muted small";
          me.textContent = j.segments.indexOf(current) >= 0 ? "✓ Matches " + current + " (as saved)." : "✗ Does not match " + current + " (as saved).";
          out.appendChild(me);
        }
        $all("[data-segment-row]").forEach(function (row) {
          var badge = row.querySelector("[data-match-badge]");
          if (badge) { badge.hidden = j.segments.indexOf(row.getAttribute("data-segment-row")) < 0; }
        });
      }).catch(function (e) {
        out.textContent = "";
        var p = document.createElement("p");
        p.className = "field-error"; p.textContent = e.message;
        out.appendChild(p);
      });
    });
  });

  // Tabs (integration guide), with arrow keys.
  $all('[role="tablist"]').forEach(function (list) {
    var tabs = $all('[role="tab"]', list);
    function select(tab, focus) {
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        var panel = document.getElementById(t.getAttribute("aria-controls"));
        if (panel) { panel.hidden = !on; }
      });
      if (focus) { tab.focus(); }
      try { localStorage.setItem("optifork.lang", tab.id); } catch (e) { /* private mode */ }
    }
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(tab, false); });
      tab.addEventListener("keydown", function (ev) {
        var j = null;
        if (ev.key === "ArrowRight") { j = (i + 1) % tabs.length; }
        if (ev.key === "ArrowLeft") { j = (i - 1 + tabs.length) % tabs.length; }
        if (ev.key === "Home") { j = 0; }
        if (ev.key === "End") { j = tabs.length - 1; }
        if (j !== null) { ev.preventDefault(); select(tabs[j], true); }
      });
    });
    var saved = null;
    try { saved = localStorage.getItem("optifork.lang"); } catch (e) { /* private mode */ }
    select(tabs.filter(function (t) { return t.id === saved; })[0] || tabs[0], false);
  });

  // Admin keys are not bound to an environment.
  var scope = $("#key-scope");
  var keyEnv = $("#key-env");
  if (scope && keyEnv) {
    var syncScope = function () { keyEnv.disabled = scope.value === "admin"; };
    scope.addEventListener("change", syncScope);
    syncScope();
  }

  // After a refused save, take the keyboard to the first field in error.
  var bad = $('[aria-invalid="true"]');
  if (bad) { bad.focus({ preventScroll: false }); }
})();
