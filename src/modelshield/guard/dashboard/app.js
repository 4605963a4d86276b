// The guard's dashboard: reads /api/summary with the read token from the URL fragment
// (#token=...), which browsers never send to a server, and draws it with DOM calls only:
// every string from the log goes in through textContent, never as markup.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const DECISIONS = ["allow", "flag", "block", "reject", "error"];

  function token() {
    const m = /(?:^|&)token=([^&]*)/.exec(location.hash.slice(1));
    return m ? decodeURIComponent(m[1]) : "";
  }
  function el(name, attrs, text) {
    const node = document.createElement(name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function svg(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v === "number" && !Number.isInteger(v)) return v.toPrecision(3);
    return String(v);
  }
  function cards(id, entries) {
    const box = document.getElementById(id);
    box.replaceChildren();
    for (const [label, value, key] of entries) {
      const card = el("div", { class: "card", "data-key": key, "data-value": value ?? "" });
      card.append(el("b", {}, fmt(value)), el("span", {}, label));
      box.append(card);
    }
  }
  function table(id, headers, rows, key) {
    const t = document.getElementById(id);
    t.replaceChildren();
    const head = el("tr");
    for (const h of headers) head.append(el("th", {}, h));
    t.append(head);
    for (const r of rows) {
      const tr = el("tr", key ? { "data-row": key(r) } : {});
      for (const c of r.cells) tr.append(el("td", {}, fmt(c)));
      t.append(tr);
    }
  }
  function timeline(data) {
    const box = document.getElementById("timeline");
    box.replaceChildren();
    const rows = data.timeline;
    const width = 720, height = 180, pad = 20;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height + pad}`, width, height: height + pad,
      "data-chart": "timeline", "data-buckets": rows.length });
    const top = Math.max(1, ...rows.map(r => DECISIONS.reduce((s, k) => s + (r[k] || 0), 0)));
    const step = rows.length ? width / rows.length : width;
    rows.forEach((r, i) => {
      let y = height;
      for (const k of DECISIONS) {
        const n = r[k] || 0;
        if (!n) continue;
        const h = height * n / top;
        y -= h;
        const rect = svg("rect", { x: (i * step).toFixed(1), y: y.toFixed(1),
          width: Math.max(step - 1, 1).toFixed(1), height: h.toFixed(1), class: k,
          "data-decision": k, "data-count": n, "data-start": r.start });
        rect.append(svg("title", {}, `${r.start} ${k}: ${n}`));
        chart.append(rect);
      }
    });
    chart.append(svg("text", { x: 0, y: height + 14 }, rows.length ? rows[0].start : "no traffic"));
    box.append(chart);
  }
  function drift(data) {
    const box = document.getElementById("drift");
    box.replaceChildren();
    const rows = data.drift;
    const bar = 22, width = 720, label = 160;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${rows.length * bar + 10}`, width,
      height: rows.length * bar + 10, "data-chart": "drift" });
    const top = Math.max(0.25, ...rows.map(r => r.psi || 0));
    rows.forEach((r, i) => {
      const w = (width - label - 80) * (r.psi || 0) / top;
      chart.append(svg("text", { x: 0, y: i * bar + 15 }, r.feature));
      const rect = svg("rect", { x: label, y: i * bar + 4, width: Math.max(w, 1).toFixed(1),
        height: bar - 8, class: r.drifted ? "drifted" : "stable", "data-feature": r.feature,
        "data-psi": r.psi ?? "", "data-count": r.count, "data-drifted": r.drifted });
      rect.append(svg("title", {}, `${r.feature}: PSI ${fmt(r.psi)}, KS ${fmt(r.ks)}, chi2 p ${fmt(r.chi2_p)}`));
      chart.append(rect);
      chart.append(svg("text", { x: label + w + 6, y: i * bar + 15 }, `PSI ${fmt(r.psi)}`));
    });
    box.append(chart);
  }
  function render(data) {
    cards("decisions", [["requests", data.total_requests, "total"],
      ...DECISIONS.map(k => [k, data.decisions[k] || 0, k])]);
    cards("latency", ["p50", "p90", "p99", "max"].map(k => [`${k} (ms)`, data.latency_ms[k], k]));
    timeline(data);
    drift(data);
    table("clients", ["client", "requests", "flagged", "blocked"],
      data.top_clients.map(c => ({ cells: [c.client, c.requests, c.flagged, c.blocked], c })),
      r => r.c.requests);
    table("recent", ["time", "client", "decision", "status", "reasons"],
      data.recent.map(r => ({ cells: [r.time, r.client, r.decision, r.status, r.reasons.join(", ")] })));
    table("reasons", ["reason", "count"], data.reasons.map(r => ({ cells: [r.reason, r.count] })));
    table("alerts", ["time", "kind", "subject", "message"],
      data.alerts.map(a => ({ cells: [a.time, a.kind, a.subject, a.message] })));
    const status = document.getElementById("status");
    status.textContent = `${data.since} .. ${data.until}: ${data.total_requests} requests`;
    document.body.setAttribute("data-loaded", "true");
  }
  async function load() {
    const since = document.getElementById("since").value;
    const status = document.getElementById("status");
    try {
      const response = await fetch(`/api/summary?since=${encodeURIComponent(since)}`,
        { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
      if (!response.ok) {
        status.textContent = response.status === 401
          ? "Add the read token to the address: #token=..." : `Error ${response.status}`;
        document.body.setAttribute("data-loaded", "error");
        return;
      }
      render(await response.json());
    } catch (e) {
      status.textContent = `Cannot load the summary: ${e}`;
      document.body.setAttribute("data-loaded", "error");
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("since").addEventListener("change", load);
    load();
    setInterval(load, 15000);
  });
})();
