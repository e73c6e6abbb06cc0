// AgentTracer UI: enhancements only. Every page works without this file: it shows times in the
// reader's zone, submits filter forms on change, draws the overview's charts (uPlot), moves
// through the waterfall with the keyboard and follows the live tail (EventSource).
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

  // The overview's charts.
  const charts = [];
  function chartOpts(el, series) {
    const text = cssVar("--muted");
    const grid = cssVar("--border");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    return {
      width: Math.max(el.clientWidth, 240),
      height: 200,
      series: [{}].concat(series),
      axes: [axis, Object.assign({ size: 56 }, axis)],
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
    };
  }
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
    };
    root.querySelectorAll(".chart[data-chart]").forEach((el) => {
      const spec = specs[el.dataset.chart];
      if (!spec || el.dataset.drawn) return;
      el.dataset.drawn = "1";
      const [series, values] = spec();
      charts.push({ el, plot: new uPlot(chartOpts(el, series), [t].concat(values), el) });
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
      const f = run.failures[0];
      cell(tr, f ? `${f.failure_type}/${f.failure_code}` : "—", "hide-narrow trunc");
      body.insertBefore(tr, body.firstChild);
      times(tr);
      while (body.children.length > max) body.removeChild(body.lastChild);
    });
  }

  function enhance(root) {
    times(root);
    autosubmit(root);
    drawCharts(root);
    waterfall(root);
    live(root);
  }

  // A filter form sends (and the URL keeps) only the fields that are set.
  document.addEventListener("htmx:configRequest", (e) => {
    const params = e.detail.parameters;
    for (const name of Array.from(Object.keys(params))) {
      if (params[name] === "") delete params[name];
    }
  });

  document.addEventListener("DOMContentLoaded", () => enhance(document));
  document.addEventListener("htmx:afterSettle", (e) => enhance(e.target));
  setInterval(() => document.querySelectorAll("time[data-ago]").forEach((el) => {
    const d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) el.textContent = ago(d);
  }), 30000);
})();
