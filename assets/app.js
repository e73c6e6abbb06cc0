// AgentTracer UI: enhancements only. Every page works without this file: it shows times in the
// reader's zone, submits filter forms on change, draws the charts (uPlot), moves through the
// waterfall with the keyboard, follows the live tail (EventSource) and sends the write actions
// (baselines, drift) to the ingest role's JSON API — without it those pages show curl commands.
"use strict";

(function () {
  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  // Times: the server writes UTC; show the reader's zone, UTC on hover.
  const pad = (n) => String(n).padStart(2, "0");
  const local = (d) =>
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const ago = (d) => {
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < 0) return "just now";
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  };
  function times(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => {
      const d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      const utc = d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace("Z", " UTC");
      el.title = `${local(d)} (your time) · ${utc}`;
      el.textContent = el.dataset.ago ? ago(d) : local(d);
    });
  }

  // Filter forms submit themselves when a choice changes.
  function autosubmit(root) {
    root.querySelectorAll("form[data-autosubmit]").forEach((form) => {
      if (form.dataset.bound) return;
      form.dataset.bound = "1";
      form.addEventListener("change", (e) => {
        if (e.target.tagName === "SELECT") form.requestSubmit();
      });
    });
  }

  // The charts of the overview, failures, behaviour and drift pages.
  const charts = [];
  function chartOpts(el, series, unit, xRange) {
    const text = cssVar("--muted");
    const grid = cssVar("--border");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const y = Object.assign({ size: 56 }, axis);
    if (unit) y.values = (u, ticks) => ticks.map((v) => (v == null ? "" : `${v} ${unit}`));
    return {
      width: Math.max(el.clientWidth, 240),
      height: 200,
      series: [{}].concat(series),
      axes: [axis, y],
      scales: Object.assign(unit === "%" ? { y: { range: [0, 100] } } : {}, xRange ? { x: { time: true, range: xRange } } : {}),
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
    };
  }
  // Lines told apart by colour and by dash, so no two look alike without colour.
  const palette = () => ["--t-llm", "--t-tool", "--t-retrieve", "--t-plan", "--t-respond", "--bad", "--t-other"].map(cssVar);
  const dashes = [undefined, [8, 4], [2, 3], [12, 3, 2, 3]];
  // A share between two gaps is drawn as a dot: a line needs two neighbours.
  const isolated = (u, si, show) => {
    if (show) return null;
    const v = u.data[si];
    const idx = v.flatMap((x, i) => (x != null && v[i - 1] == null && v[i + 1] == null ? [i] : []));
    return idx.length ? idx : null;
  };
  function drawCharts(root) {
    const data = root.querySelector("#chart-data");
    if (!data || typeof uPlot === "undefined") return;
    const d = JSON.parse(data.textContent);
    const t = d.t;
    const colours = {
      success: cssVar("--ok"), failure: cssVar("--bad"), partial: cssVar("--warn"), running: cssVar("--info"),
      tool: cssVar("--t-tool"), model: cssVar("--t-llm"), retrieval: cssVar("--t-retrieve"), orchestration: cssVar("--t-plan"),
    };
    const line = (label, stroke) => ({ label, stroke, width: 2, points: { show: false } });
    const specs = {
      runs: () => {
        const names = Object.keys(d.runs);
        return [names.map((n) => line(n, colours[n])), names.map((n) => d.runs[n])];
      },
      latency: () => [
        [Object.assign(line("run duration p95 (ms)", cssVar("--accent")), { spanGaps: true }),
         Object.assign(line("step latency p95 (ms)", cssVar("--t-tool")), { spanGaps: true })],
        [d.p95_run_duration_ms, d.p95_step_latency_ms],
      ],
      failures: () => {
        const names = Object.keys(d.failures);
        if (names.length === 0) return [[line("failures", colours.failure)], [t.map(() => 0)]];
        return [names.map((n) => line(n, colours[n] || colours.failure)), names.map((n) => d.failures[n])];
      },
      // Named series of one unit: `lines[key] = {unit, points, series: {name: [values]}}`; the
      // time axis spans `x_range` when the data names one (events, however few, in their window).
      lines: (el) => {
        const g = d.lines && d.lines[el.dataset.key];
        if (!g) return null;
        const names = Object.keys(g.series);
        const hues = palette();
        const series = names.map((n, i) => Object.assign(line(n, hues[i % hues.length]), {
          // Shares of time bins leave a gap where a bin had none; sparse events are joined.
          dash: dashes[i % dashes.length], spanGaps: g.points, points: g.points ? { show: true, size: 7 } : { filter: isolated },
        }));
        return [series, names.map((n) => g.series[n]), g.unit];
      },
    };
    root.querySelectorAll(".chart[data-chart]").forEach((el) => {
      const spec = specs[el.dataset.chart];
      if (!spec || el.dataset.drawn) return;
      const drawn = spec(el);
      if (!drawn) return;
      el.dataset.drawn = "1";
      const [series, values, unit] = drawn;
      charts.push({ el, plot: new uPlot(chartOpts(el, series, unit, d.x_range), [t].concat(values), el) });
    });
  }
  let resizing;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      charts.forEach(({ el, plot }) => plot.setSize({ width: Math.max(el.clientWidth, 240), height: 200 }));
    }, 150);
  });

  // The waterfall: the selected row follows clicks; arrow keys (or j/k) move between rows.
  function waterfall(root) {
    const wf = root.querySelector("#waterfall");
    if (!wf || wf.dataset.bound) return;
    wf.dataset.bound = "1";
    wf.addEventListener("click", (e) => {
      const row = e.target.closest(".wf-row");
      if (!row) return;
      wf.querySelectorAll('.wf-row[aria-current="true"]').forEach((r) => r.removeAttribute("aria-current"));
      row.setAttribute("aria-current", "true");
    });
    wf.addEventListener("keydown", (e) => {
      const row = e.target.closest(".wf-row");
      if (!row) return;
      let next = null;
      if (e.key === "ArrowDown" || e.key === "j") next = row.nextElementSibling;
      if (e.key === "ArrowUp" || e.key === "k") next = row.previousElementSibling;
      if (next && next.classList.contains("wf-row")) {
        e.preventDefault();
        next.focus();
      }
    });
  }

  // A cost as the server's pages print it (src/ui/format.rs, `usd`); "—" when unpriced.
  function usd(v) {
    if (v == null) return "—";
    const a = Math.abs(v), sign = v < 0 ? "-" : "";
    if (a === 0) return "$0";
    if (a >= 100) return `${sign}$${Math.round(a).toLocaleString("en-US")}`;
    if (a >= 1) return `${sign}$${a.toFixed(2)}`;
    if (a >= 0.01) return `${sign}$${a.toFixed(4)}`;
    const places = Math.min(9, Math.max(4, 3 - Math.floor(Math.log10(a))));
    return `${sign}$${a.toFixed(places)}`;
  }

  // The live tail: one row per run event, newest first.
  function live(root) {
    const table = root.querySelector("#live-table[data-stream]");
    if (!table || table.dataset.bound || typeof EventSource === "undefined") return;
    table.dataset.bound = "1";
    const body = table.querySelector("tbody");
    const state = root.querySelector("#live-state");
    const base = table.dataset.base;
    const max = 200;
    const cell = (tr, text, cls) => {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      if (text instanceof Node) td.appendChild(text); else td.textContent = text;
      tr.appendChild(td);
      return td;
    };
    const source = new EventSource(table.dataset.stream);
    source.addEventListener("open", () => { if (state) state.textContent = "Connected: new runs appear as they are stored."; });
    source.addEventListener("error", () => { if (state) state.textContent = "Reconnecting…"; });
    source.addEventListener("run", (ev) => {
      const run = JSON.parse(ev.data);
      const empty = table.querySelector(".empty-row");
      if (empty) empty.remove();
      const tr = document.createElement("tr");
      tr.className = "fresh";
      tr.dataset.run = run.run_id;
      const a = document.createElement("a");
      a.href = `${base}/runs/${run.run_id}`;
      const badge = document.createElement("span");
      badge.className = `status ${run.status}`;
      badge.textContent = run.status;
      a.appendChild(badge);
      cell(tr, a);
      const who = document.createElement("a");
      who.href = a.href;
      who.textContent = `${run.agent_id}@${run.agent_version}`;
      cell(tr, who, "trunc");
      cell(tr, run.environment, "hide-narrow");
      const time = document.createElement("time");
      time.setAttribute("datetime", run.started_at);
      time.dataset.ago = "1";
      cell(tr, time);
      cell(tr, String(run.steps.length), "num hide-narrow");
      cell(tr, usd(run.cost_usd), "num hide-narrow");
      const f = run.failures[0];
      cell(tr, f ? `${f.failure_type}/${f.failure_code}` : "—", "hide-narrow trunc");
      body.insertBefore(tr, body.firstChild);
      times(tr);
      while (body.children.length > max) body.removeChild(body.lastChild);
    });
  }

  // Writes: create a baseline, activate or deactivate one, resolve a drift event. The query role
  // only reads, so the browser sends them to the ingest role's JSON API (`ui.ingest_url`, or this
  // origin behind a proxy). With ingest keys on, a 401/403 asks for a key once; it is kept in
  // this tab's sessionStorage (never a cookie, never the URL) and the request is sent again.
  const KEY = "agenttracer.ingest_key";
  const status = (text, failed) => {
    const el = document.getElementById("write-status");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("error", Boolean(failed));
  };
  function askKey() {
    const dialog = document.getElementById("key-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(null);
    const form = dialog.querySelector("form");
    const input = form.elements.key;
    return new Promise((resolve) => {
      const done = (key) => {
        form.removeEventListener("submit", submitted);
        dialog.removeEventListener("cancel", cancelled);
        dialog.querySelector("[data-cancel]").removeEventListener("click", cancelled);
        dialog.close();
        resolve(key);
      };
      const submitted = (e) => { e.preventDefault(); done(input.value.trim() || null); };
      const cancelled = (e) => { e.preventDefault(); done(null); };
      form.addEventListener("submit", submitted);
      dialog.addEventListener("cancel", cancelled);
      dialog.querySelector("[data-cancel]").addEventListener("click", cancelled);
      input.value = "";
      dialog.showModal();
      input.focus();
    });
  }
  async function post(path, body) {
    const writes = document.getElementById("writes");
    const url = (writes ? writes.dataset.ingest : "") + path;
    const send = () => {
      const headers = { "Content-Type": "application/json" };
      const key = sessionStorage.getItem(KEY);
      if (key) headers["X-API-Key"] = key;
      return fetch(url, { method: "POST", headers, body: JSON.stringify(body), credentials: "omit", cache: "no-store" });
    };
    let res = await send();
    if (res.status === 401 || res.status === 403) {
      sessionStorage.removeItem(KEY);
      status(res.status === 401 ? "The ingest role asks for a key." : "The ingest role refused the key; another one?");
      const key = await askKey();
      if (!key) return null;
      sessionStorage.setItem(KEY, key);
      status("Sending…");
      res = await send();
      if (res.status === 401 || res.status === 403) sessionStorage.removeItem(KEY);
    }
    return res;
  }
  // What an error answer says: `detail` (a text, or the 422 list naming each field).
  async function problem(res) {
    try {
      const body = await res.json();
      if (Array.isArray(body.detail)) {
        return body.detail.map((p) => `${(p.loc || []).slice(1).join(".")}: ${p.msg}`).join("; ");
      }
      if (body.detail) return String(body.detail);
    } catch (_) { /* not JSON */ }
    return `HTTP ${res.status}`;
  }
  // The list a write changed, read again.
  function reloadList() {
    if (window.htmx && document.getElementById("list")) {
      htmx.ajax("GET", window.location.href, { target: "#list", select: "#list", swap: "outerHTML" });
    } else {
      window.location.reload();
    }
  }
  async function write(path, body, done, control) {
    control.disabled = true;
    status("Sending…");
    try {
      const res = await post(path, body);
      if (res === null) status("Not sent: an ingest API key is needed.", true);
      // (The answer is read to its end: left unread, the browser may still be receiving it when
      // the page moves on, and abort it.)
      else if (res.ok) { await res.arrayBuffer(); status(done); reloadList(); return true; }
      else status(`Refused: ${await problem(res)}`, true);
    } catch (err) {
      status(`Not sent: the ingest role could not be reached (${err.message}).`, true);
    } finally {
      control.disabled = false;
    }
    return false;
  }
  document.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-post]");
    if (!button) return;
    write(button.dataset.post, {}, `${button.textContent.trim()}: done.`, button);
  });
  document.addEventListener("submit", async (e) => {
    const form = e.target.closest("form[data-post]");
    if (!form) return;
    e.preventDefault();
    const body = {};
    for (const el of form.elements) {
      if (!el.name) continue;
      if (el.type === "checkbox") body[el.name] = el.checked;
      else if (el.value.trim() === "") continue;
      else body[el.name] = el.type === "number" ? Number(el.value) : el.value.trim();
    }
    await write(form.dataset.post, body, "Made: the baseline is listed.", form.querySelector("button[type=submit]"));
  });
  function writable(root) {
    root.querySelectorAll("[data-post][hidden]").forEach((el) => { el.hidden = false; });
  }

  // The navigation scrolls sideways where it does not fit (a phone): bring the current page's link
  // into view.
  function currentInView() {
    const nav = document.querySelector(".topbar .nav");
    const a = nav && nav.querySelector("[aria-current]");
    if (!a || nav.scrollWidth <= nav.clientWidth) return;
    const n = nav.getBoundingClientRect(), r = a.getBoundingClientRect();
    nav.scrollLeft += r.left + r.width / 2 - (n.left + n.width / 2);
  }

  function enhance(root) {
    times(root);
    autosubmit(root);
    drawCharts(root);
    waterfall(root);
    live(root);
    writable(root);
  }

  // A filter form sends (and the URL keeps) only the fields that are set.
  document.addEventListener("htmx:configRequest", (e) => {
    const params = e.detail.parameters;
    for (const name of Array.from(Object.keys(params))) {
      if (params[name] === "") delete params[name];
    }
  });

  document.addEventListener("DOMContentLoaded", () => { currentInView(); enhance(document); });
  document.addEventListener("htmx:afterSettle", (e) => enhance(e.target));
  setInterval(() => document.querySelectorAll("time[data-ago]").forEach((el) => {
    const d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) el.textContent = ago(d);
  }), 30000);
})();
