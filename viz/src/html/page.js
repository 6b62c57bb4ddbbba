// dojobber's run page: draws itself from the JSON in #run-data.
// Every name and error is put in as text (textContent), never as markup.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const page = document.getElementById("page");
  const jobs = data.jobs;
  const STATUSES = ["passed", "fixed", "failed", "blocked", "pending", "unknown"];
  const PHASES = ["check", "run", "recheck", "cleanup"];
  const selectListeners = [];
  const afterLayout = [];

  // ---- helpers -------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }
  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    return node;
  }
  function statusOf(job) { return job.status || "unknown"; }
  function duration(secs) {
    if (secs === null || secs === undefined) return "";
    if (secs === 0) return "0 s";
    let value = secs, unit = "s";
    if (secs < 1e-3) { value = secs * 1e6; unit = "\u00b5s"; }
    else if (secs < 1) { value = secs * 1e3; unit = "ms"; }
    const decimals = value >= 100 ? 0 : value >= 10 ? 1 : 2;
    return value.toFixed(decimals) + " " + unit;
  }
  function errorText(failure) {
    if (!failure) return "";
    return [failure.message].concat(failure.causes || []).join("\n  caused by: ");
  }
  // A name as the pictures show it: every control character (line breaks
  // and tabs too) and U+FFFE/U+FFFF as a Rust escape, \u{1b}; the same
  // as the crate's names::printable.
  function shown(name) {
    // dojobber::is_hostile, and what XML forbids, as names.rs escapes them.
    return name.replace(/[\p{Cc}\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069\uFFFE\uFFFF]/gu, (c) => "\\u{" + c.codePointAt(0).toString(16) + "}");
  }
  function shorten(name, max) {
    const chars = Array.from(name.replace(/[^\S\p{Cc}]+/gu, " "));
    return chars.length > max ? chars.slice(0, max - 1).join("") + "\u2026" : chars.join("");
  }
  function swatch(kind) { return el("span", { class: "swatch " + kind }); }
  function jobLink(index) {
    return el("span", {
      class: "job-link", text: shown(jobs[index].name), role: "link", tabindex: "0",
      "data-job": String(index), onclick: () => select(index),
      onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(index); } },
    });
  }
  // The worker elsewhere that performed a try (a run across hosts), or null.
  function workerOf(job, attempt) {
    const workers = job.performed_by || [];
    return workers[attempt - 1] || null;
  }
  const remote = jobs.some((job) => (job.performed_by || []).some((worker) => worker));
  function firstStart(job) {
    let first = null;
    for (const p of job.phases) {
      const t = p.start_secs !== null ? p.start_secs : p.end_secs;
      if (t !== null && (first === null || t < first)) first = t;
    }
    return first;
  }
  function waited(job) {
    const start = firstStart(job);
    if (job.ready_secs === null || start === null) return null;
    return Math.max(0, start - job.ready_secs);
  }
  const index = new Map();
  jobs.forEach((job, i) => { if (!index.has(job.name)) index.set(job.name, i); });
  const timed = jobs.some((job) => job.phases.some((p) => p.end_secs !== null));
  let end = data.elapsed_secs;
  for (const job of jobs) for (const p of job.phases) if (p.end_secs !== null) end = Math.max(end, p.end_secs);
  if (!(end > 0)) end = 1e-6;

  const tooltip = el("div", { id: "tooltip", role: "tooltip" });
  document.body.append(tooltip);
  function showTip(event, text) {
    tooltip.textContent = text;
    tooltip.style.display = "block";
    const x = Math.min(event.clientX + 14, window.innerWidth - tooltip.offsetWidth - 4);
    const y = Math.min(event.clientY + 14, window.innerHeight - tooltip.offsetHeight - 4);
    tooltip.style.left = Math.max(0, x) + "px";
    tooltip.style.top = Math.max(0, y) + "px";
  }
  function hideTip() { tooltip.style.display = "none"; }

  function niceTicks(max, count) {
    const raw = max / count;
    const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let t = 0; t <= max * 1.0001; t += step) ticks.push(t);
    return ticks;
  }

  // ---- summary --------------------------------------------------------
  function summary() {
    const counts = {};
    for (const job of jobs) counts[statusOf(job)] = (counts[statusOf(job)] || 0) + 1;
    const countBox = el("div", { class: "counts" },
      el("span", { class: "count" }, el("b", { text: String(jobs.length) }), "jobs"));
    for (const status of STATUSES) {
      if (counts[status]) {
        countBox.append(el("span", { class: "count status-" + status },
          swatch(status), el("b", { text: String(counts[status]) }), status));
      }
    }
    const facts = el("dl", { class: "facts" });
    const fact = (name, value) => facts.append(el("dt", { text: name }), el("dd", { text: value }));
    fact("elapsed", duration(data.elapsed_secs));
    fact("rounds", String(data.rounds));
    fact("stopped", data.stopped === null ? "no: every job had its chance" : data.stopped);
    fact("no-act", data.no_act ? "yes: nothing was changed" : "no");
    if (data.cleanup_failure) {
      fact("cleanup failed", shown(data.cleanup_failure.job) + ": " + errorText(data.cleanup_failure.error));
    }
    for (const [name, value] of data.settings) fact(name, value);
    if (timed) fact("most phases at once", String(concurrency().maxInFlight));
    fact("phase times", timed ? "yes" : "no: the report has no phases (version 1)");
    return el("section", { id: "summary" }, el("h2", { text: "Summary" }), countBox, facts);
  }

  // ---- failures -------------------------------------------------------
  function failures() {
    const section = el("section", { id: "failures" }, el("h2", { text: "Failures" }));
    const failed = jobs.map((job, i) => i).filter((i) => jobs[i].status === "failed");
    if (failed.length === 0 && !data.cleanup_failure) {
      section.append(el("p", { class: "note", text: "No job failed." }));
    }
    for (const i of failed) {
      const job = jobs[i];
      const box = el("div", { class: "failure" }, jobLink(i),
        " failed after " + job.tries + (job.tries === 1 ? " try" : " tries"));
      const failedPhases = job.phases.filter((p) => !p.passed && p.performed);
      if (failedPhases.length > 0) {
        const list = el("ul", { class: "failed-phases" });
        for (const p of failedPhases) {
          const worker = workerOf(job, p.attempt);
          list.append(el("li", {}, "try " + p.attempt + (worker ? " on " + shown(worker) : "") + ", " + p.phase + ": ",
            el("span", { class: "error", text: errorText(p.error) })));
        }
        box.append(list);
      } else if (job.last_error) {
        box.append(el("div", { class: "error", text: errorText(job.last_error) }));
      }
      section.append(box);
    }
    if (data.cleanup_failure) {
      section.append(el("div", { class: "failure" }, "cleanup of ",
        el("b", { text: shown(data.cleanup_failure.job) }), " failed: ",
        el("span", { class: "error", text: errorText(data.cleanup_failure.error) })));
    }
    const blocked = jobs.map((job, i) => i).filter((i) => jobs[i].status === "blocked");
    if (blocked.length > 0) {
      const list = el("ul", {});
      for (const i of blocked) {
        const job = jobs[i];
        const why = job.blocked_by !== null ? "by " + shown(job.blocked_by)
          : job.blocked_reason !== null ? "(" + job.blocked_reason + ")" : "";
        list.append(el("li", {}, jobLink(i), " blocked " + why));
      }
      section.append(el("p", { text: "Not run:" }), list);
    }
    return section;
  }

  // ---- timeline -------------------------------------------------------
  function phaseTip(job, p) {
    const worker = workerOf(job, p.attempt);
    const lines = [shown(job.name), p.phase + ", try " + p.attempt + (worker ? " on " + shown(worker) : "") +
      (p.performed ? "" : " (decided without user code)")];
    if (p.start_secs !== null) lines.push("started " + duration(p.start_secs) + ", took " + duration(p.end_secs - p.start_secs));
    else if (p.end_secs !== null) lines.push("at " + duration(p.end_secs));
    lines.push(p.passed ? "passed" : "failed: " + errorText(p.error));
    return lines.join("\n");
  }
  function phaseLegend() {
    const legend = el("div", { class: "legend" });
    for (const phase of PHASES) legend.append(el("span", {}, swatch(phase), phase));
    legend.append(el("span", {}, el("span", { class: "swatch", style: "border: 2px solid #d00000" }), "phase failed"));
    legend.append(el("span", {}, swatch("wait"), "ready, waiting for a worker"));
    legend.append(el("span", {}, el("span", { class: "swatch", style: "border: 0; border-top: 2px dashed #d00000; height: 0" }), "waiting to retry"));
    return legend;
  }
  function timeline(available) {
    const section = el("section", { id: "timeline" }, el("h2", { text: "Timeline" }));
    if (!timed) {
      section.append(el("p", { class: "note", text: "The timeline needs the run's events: "
        + "make the page with the event stream too (--events-json; cargo xtask html REPORT --events EVENTS)." }));
      return section;
    }
    section.append(phaseLegend());
    const rows = jobs.map((job, i) => i);
    rows.sort((a, b) => {
      const sa = firstStart(jobs[a]), sb = firstStart(jobs[b]);
      if (sa === null || sb === null) return (sa === null) - (sb === null) || a - b;
      return sa - sb || a - b;
    });
    const holder = el("div", { class: "chart" });
    const zoom = el("select", { title: "stretch the time axis; the chart scrolls sideways" });
    for (const factor of [1, 2, 4, 8, 16, 32]) zoom.append(el("option", { value: String(factor), text: factor + "\u00d7" }));
    zoom.addEventListener("change", () => { holder.replaceChildren(draw(Number(zoom.value))); notify(); });
    section.append(el("div", { class: "graph-tools" }, el("label", {}, "time zoom ", zoom)), holder);
    holder.append(draw(1));
    holder.addEventListener("mousemove", (event) => {
      const target = event.target;
      const i = target.getAttribute("data-job");
      if (i === null) { hideTip(); return; }
      const job = jobs[Number(i)];
      const k = target.getAttribute("data-phase");
      if (k !== null) showTip(event, phaseTip(job, job.phases[Number(k)]));
      else if (target.getAttribute("data-wait") !== null) showTip(event, shown(job.name) + "\nready at " + duration(job.ready_secs) + ", waited " + duration(waited(job)) + " for a worker");
      else showTip(event, shown(job.name) + " (" + statusOf(job) + ")");
    });
    holder.addEventListener("mouseleave", hideTip);
    holder.addEventListener("click", (event) => {
      const i = event.target.getAttribute("data-job");
      if (i !== null) select(Number(i));
    });
    selectListeners.push((selected) => {
      for (const node of holder.querySelectorAll(".row-band, .row-label")) {
        node.classList.toggle("selected", Number(node.getAttribute("data-job")) === selected);
      }
    });
    return section;

    function draw(factor) {
      const rowHeight = 20, labelWidth = 230, top = 24;
      const width = Math.max(640, Math.floor(available));
      const plot = (width - labelWidth - 16) * factor;
      const x = (t) => labelWidth + (t / end) * plot;
      const height = top + rows.length * rowHeight + 6;
      const svg = svgEl("svg", { width: labelWidth + plot + 16, height: height, class: "timeline" });
      for (const t of niceTicks(end, 8 * factor)) {
        svg.append(svgEl("line", { x1: x(t), x2: x(t), y1: top - 4, y2: height, stroke: "#e4e4e4" }));
        svg.append(svgEl("text", { x: x(t), y: 14, "font-size": 11, "text-anchor": "middle", fill: "#555", text: duration(t) }));
      }
      rows.forEach((i, row) => {
        const job = jobs[i];
        const y = top + row * rowHeight;
        const band = svgEl("rect", { x: 0, y: y, width: labelWidth + plot + 16, height: rowHeight, fill: row % 2 ? "#ffffff" : "#f6f6f6", class: "row-band", "data-job": i });
        svg.append(band);
        const label = svgEl("text", { x: 4, y: y + 14, "font-size": 12, class: "row-label", "data-job": i, text: shown(shorten(job.name, 32)) });
        label.append(svgEl("title", { text: shown(job.name) }));
        svg.append(label);
        if (job.phases.length === 0) {
          svg.append(svgEl("text", { x: labelWidth + 4, y: y + 14, "font-size": 11, fill: "#777",
            text: statusOf(job) + (job.blocked_by !== null ? " by " + shown(job.blocked_by) : job.blocked_reason !== null ? " (" + job.blocked_reason + ")" : "") }));
          return;
        }
        const start = firstStart(job);
        if (job.ready_secs !== null && start !== null && start > job.ready_secs) {
          svg.append(svgEl("rect", { class: "wait", x: x(job.ready_secs), y: y + 6, width: Math.max(1, x(start) - x(job.ready_secs)), height: rowHeight - 12, "data-job": i, "data-wait": "1" }));
        }
        // The gaps between tries: from a try's last phase to the next try's first.
        const tries = new Map();
        for (const p of job.phases) {
          if (p.phase === "cleanup") continue;
          const s = p.start_secs !== null ? p.start_secs : p.end_secs;
          const t = tries.get(p.attempt) || { first: s, last: p.end_secs };
          t.first = Math.min(t.first, s);
          t.last = Math.max(t.last, p.end_secs);
          tries.set(p.attempt, t);
        }
        for (const [attempt, t] of tries) {
          const before = tries.get(attempt - 1);
          if (before && t.first > before.last) {
            svg.append(svgEl("line", { class: "retry", x1: x(before.last), x2: x(t.first), y1: y + rowHeight / 2, y2: y + rowHeight / 2 }));
          }
        }
        job.phases.forEach((p, k) => {
          const s = p.start_secs !== null ? p.start_secs : p.end_secs;
          const classes = ["phase", p.phase];
          if (!p.passed) classes.push("failed");
          if (!p.performed) classes.push("decided");
          svg.append(svgEl("rect", { class: classes.join(" "), x: x(s), y: y + 3, width: Math.max(2, x(p.end_secs) - x(s)), height: rowHeight - 6, "data-job": i, "data-phase": k }));
        });
      });
      return svg;
    }
  }

  // ---- concurrency ----------------------------------------------------
  let concurrencyCache = null;
  function concurrency() {
    if (concurrencyCache) return concurrencyCache;
    // +1/-1 steps; at equal times the ends come first, so a phase handed
    // out as another finishes is not counted twice.
    const steps = [];
    for (const job of jobs) {
      for (const p of job.phases) {
        if (p.start_secs !== null && p.end_secs !== null) {
          steps.push([p.start_secs, 1, 0], [p.end_secs, -1, 0]);
        }
      }
      const start = firstStart(job);
      if (job.ready_secs !== null && start !== null && start > job.ready_secs) {
        steps.push([job.ready_secs, 0, 1], [start, 0, -1]);
      }
    }
    steps.sort((a, b) => a[0] - b[0] || (a[1] + a[2]) - (b[1] + b[2]));
    const points = [[0, 0, 0]];
    let inFlight = 0, waiting = 0, maxInFlight = 0, maxWaiting = 0;
    for (const [t, dFlight, dWait] of steps) {
      inFlight += dFlight; waiting += dWait;
      maxInFlight = Math.max(maxInFlight, inFlight);
      maxWaiting = Math.max(maxWaiting, waiting);
      points.push([t, inFlight, waiting]);
    }
    concurrencyCache = { points, maxInFlight, maxWaiting };
    return concurrencyCache;
  }
  function concurrencyChart(available) {
    const section = el("section", { id: "concurrency" }, el("h2", { text: "Concurrency" }));
    if (!timed) {
      section.append(el("p", { class: "note", text: "The concurrency chart needs the run's events too." }));
      return section;
    }
    const { points, maxInFlight, maxWaiting } = concurrency();
    const legend = el("div", { class: "legend" },
      el("span", {}, el("span", { class: "swatch", style: "background: #4c78a8" }), "phases in flight"),
      el("span", {}, el("span", { class: "swatch", style: "background: #f58518" }), "jobs ready, waiting for a worker"));
    const width = Math.max(640, Math.floor(available));
    const height = 170, left = 40, top = 10, bottom = 22;
    const top_count = Math.max(1, maxInFlight, maxWaiting);
    const x = (t) => left + (t / end) * (width - left - 16);
    const y = (n) => top + (1 - n / top_count) * (height - top - bottom);
    const svg = svgEl("svg", { width: width, height: height, class: "concurrency" });
    for (let n = 0; n <= top_count; n += Math.max(1, Math.ceil(top_count / 5))) {
      svg.append(svgEl("line", { x1: left, x2: width - 16, y1: y(n), y2: y(n), stroke: "#e4e4e4" }));
      svg.append(svgEl("text", { x: left - 6, y: y(n) + 4, "font-size": 11, "text-anchor": "end", fill: "#555", text: String(n) }));
    }
    for (const t of niceTicks(end, 8)) {
      svg.append(svgEl("text", { x: x(t), y: height - 6, "font-size": 11, "text-anchor": "middle", fill: "#555", text: duration(t) }));
    }
    function stepPath(column) {
      let d = "M" + x(0) + "," + y(0);
      let last = 0;
      for (const point of points) {
        d += " L" + x(point[0]) + "," + y(last) + " L" + x(point[0]) + "," + y(point[column]);
        last = point[column];
      }
      return d + " L" + x(end) + "," + y(last);
    }
    svg.append(svgEl("path", { d: stepPath(1) + " L" + x(end) + "," + y(0) + " Z", fill: "#4c78a8", "fill-opacity": 0.35, stroke: "#4c78a8", "stroke-width": 1.5, class: "in-flight" }));
    svg.append(svgEl("path", { d: stepPath(2), fill: "none", stroke: "#f58518", "stroke-width": 1.5, class: "waiting" }));
    section.append(legend, el("div", { class: "chart" }, svg));
    return section;
  }

  // ---- graph ----------------------------------------------------------
  function graph() {
    const section = el("section", { id: "graph" }, el("h2", { text: "Job graph" }));
    const legend = el("div", { class: "legend" });
    for (const [status, label] of [["passed", "passed"], ["fixed", "fixed"], ["failed", "failed"], ["blocked", "blocked, not run"]]) {
      legend.append(el("span", {}, swatch(status), label));
    }
    legend.append(el("span", { class: "note", text: "arrows point from a job to its deps; wheel or buttons to zoom, drag to pan, click a job for its phases" }));
    const view = el("div", { class: "graph-view", id: "graph-view" });
    const details = el("div", { id: "details" }, el("p", { class: "note", text: "Click a job (in the graph, the timeline or the table) to see its phases and errors." }));
    const tools = el("div", { class: "graph-tools" });
    section.append(legend, tools, el("div", { class: "graph-layout" }, view, details));
    const parsed = new DOMParser().parseFromString(data.graph_svg, "image/svg+xml");
    if (parsed.getElementsByTagName("parsererror").length > 0) {
      view.append(el("p", { class: "note", text: "The graph picture could not be read." }));
      return section;
    }
    const svg = document.importNode(parsed.documentElement, true);
    const original = (svg.getAttribute("viewBox") || "0 0 100 100").split(/[\s,]+/).map(Number);
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    view.append(svg);
    // Each box to the jobs it draws: one, or a whole fan-out of one kind.
    const nodes = Array.from(svg.querySelectorAll("g.job"));
    const members = nodes.map(() => []);
    jobs.forEach((job, i) => { const at = data.graph_boxes[i]; if (at < nodes.length) members[at].push(i); });
    nodes.forEach((node, position) => {
      node.setAttribute("data-box", String(position));
      if (members[position].length === 1) node.setAttribute("data-job", String(members[position][0]));
      else if (members[position].length > 1) node.classList.add("collapsed");
    });
    svg.setAttribute("data-whole", original.join(" "));
    let box = original.slice();
    const apply = () => svg.setAttribute("viewBox", box.join(" "));
    // A graph too wide (or tall) to read when it all fits starts at a
    // readable size at its top, where the root is; "fit" shows it all.
    afterLayout.push(() => {
      const viewWidth = view.clientWidth, viewHeight = view.clientHeight;
      if (!viewWidth || !viewHeight) return;
      const readable = 0.8, tooSmall = 0.5;
      if (Math.min(viewWidth / original[2], viewHeight / original[3]) >= tooSmall) return;
      const w = viewWidth / readable, h = viewHeight / readable;
      const y = original[3] > h ? original[1] : original[1] + (original[3] - h) / 2;
      box = [original[0] + (original[2] - w) / 2, y, w, h];
      apply();
    });
    const zoom = (factor, cx, cy) => {
      const w = box[2] * factor, h = box[3] * factor;
      const limit = Math.max(original[2], original[3]);
      if (w > limit * 20 || w < 10) return;
      box = [cx - (cx - box[0]) * factor, cy - (cy - box[1]) * factor, w, h];
      apply();
    };
    const centre = () => [box[0] + box[2] / 2, box[1] + box[3] / 2];
    const toSvg = (event) => {
      const matrix = svg.getScreenCTM();
      if (!matrix) return centre();
      const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
      return [point.x, point.y];
    };
    tools.append(
      el("button", { type: "button", text: "+", title: "zoom in", onclick: () => zoom(1 / 1.3, ...centre()) }),
      el("button", { type: "button", text: "\u2212", title: "zoom out", onclick: () => zoom(1.3, ...centre()) }),
      el("button", { type: "button", text: "fit", title: "show the whole graph", onclick: () => { box = original.slice(); apply(); } }));
    view.addEventListener("wheel", (event) => {
      event.preventDefault();
      zoom(event.deltaY < 0 ? 1 / 1.2 : 1.2, ...toSvg(event));
    }, { passive: false });
    let drag = null, dragged = false;
    view.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      const matrix = svg.getScreenCTM();
      drag = { x: event.clientX, y: event.clientY, box: box.slice(), scale: matrix ? matrix.a : 1 };
      dragged = false;
    });
    window.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
      if (!dragged && Math.hypot(dx, dy) < 4) return;
      dragged = true;
      view.classList.add("dragging");
      box = [drag.box[0] - dx / drag.scale, drag.box[1] - dy / drag.scale, box[2], box[3]];
      apply();
    });
    window.addEventListener("pointerup", () => { drag = null; view.classList.remove("dragging"); });
    view.addEventListener("click", (event) => {
      if (dragged) { dragged = false; return; }
      const node = event.target.closest("g.job");
      if (!node) return;
      if (node.hasAttribute("data-job")) select(Number(node.getAttribute("data-job")));
      else if (node.classList.contains("collapsed")) selectBox(members[Number(node.getAttribute("data-box"))], node);
    });
    selectListeners.push((selected) => {
      // A job of a collapsed fan-out selects its box.
      const chosen = nodes[data.graph_boxes[selected]];
      for (const node of nodes) node.classList.toggle("selected", node === chosen);
      // Bring the chosen job into view when it is outside.
      if (!chosen) return;
      const b = chosen.getBBox();
      const inside = b.x >= box[0] && b.y >= box[1] && b.x + b.width <= box[0] + box[2] && b.y + b.height <= box[1] + box[3];
      if (!inside) {
        box = [b.x + b.width / 2 - box[2] / 2, b.y + b.height / 2 - box[3] / 2, box[2], box[3]];
        apply();
      }
    });
    return section;
  }

  // A collapsed box: the jobs it stands for, each a link to its details.
  function selectBox(list, box) {
    selectedJob = null;
    for (const node of document.querySelectorAll(".selected")) node.classList.remove("selected");
    box.classList.add("selected");
    const details = document.getElementById("details");
    details.replaceChildren();
    details.append(el("h3", { text: list.length + " jobs of one kind" }));
    const counts = {};
    for (const i of list) counts[statusOf(jobs[i])] = (counts[statusOf(jobs[i])] || 0) + 1;
    const countBox = el("div", { class: "counts" });
    for (const status of STATUSES) {
      if (counts[status]) countBox.append(el("span", { class: "count" }, swatch(status), el("b", { text: String(counts[status]) }), status));
    }
    const items = el("ul", { class: "members" });
    for (const i of list) items.append(el("li", {}, swatch(statusOf(jobs[i])), jobLink(i)));
    details.append(countBox, el("p", { class: "note", text: "Drawn as one box; choose one for its phases." }), items);
  }

  function showDetails(i) {
    const job = jobs[i];
    const details = document.getElementById("details");
    details.replaceChildren();
    details.append(el("h3", { text: shown(job.name) }));
    const facts = el("dl", { class: "facts" });
    const fact = (name, ...value) => facts.append(el("dt", { text: name }), el("dd", {}, ...value));
    fact("status", swatch(statusOf(job)), statusOf(job));
    fact("tries", String(job.tries));
    const workers = (job.performed_by || []).map((worker, n) => worker ? "try " + (n + 1) + " on " + shown(worker) : null).filter((t) => t);
    if (workers.length > 0) fact("performed by", workers.join(", "));
    fact("time in phases", duration(job.time_secs));
    if (waited(job) !== null) fact("waited for a worker", duration(waited(job)));
    // Long lists of jobs fold away behind their count.
    const links = (list, what) => {
      const parts = [];
      list.forEach((k, n) => { if (n > 0) parts.push(", "); parts.push(jobLink(k)); });
      if (list.length <= 12) return parts;
      return [el("details", {}, el("summary", { text: list.length + " " + what }), ...parts)];
    };
    if (job.deps.length > 0) fact("deps", ...links(job.deps, "deps"));
    const dependents = [];
    jobs.forEach((other, k) => { if (other.deps.includes(i)) dependents.push(k); });
    if (dependents.length > 0) fact("needed by", ...links(dependents, "jobs"));
    if (job.blocked_by !== null) {
      fact("blocked by", index.has(job.blocked_by) ? jobLink(index.get(job.blocked_by)) : shown(job.blocked_by));
    }
    if (job.blocked_reason !== null) fact("blocked because", job.blocked_reason);
    if (job.last_error) {
      const name = earlierError(job) ? (job.status === "fixed" ? "error before the fix" : "earlier error") : "last error";
      fact(name, el("span", { class: earlierError(job) ? "error earlier" : "error", text: errorText(job.last_error) }));
    }
    details.append(facts);
    if (job.phases.length === 0) {
      if (job.tries > 0) details.append(el("p", { class: "note", text: "Its phases are in the run's events, which this page was made without." }));
      return;
    }
    const table = el("table", { class: "phases" },
      el("thead", {}, el("tr", {}, el("th", { text: "try" }), ...(remote ? [el("th", { text: "worker" })] : []),
        el("th", { text: "phase" }), el("th", { class: "num", text: "start" }),
        el("th", { class: "num", text: "took" }), el("th", { text: "outcome" }))));
    const body = el("tbody");
    for (const p of job.phases) {
      body.append(el("tr", {},
        el("td", { class: "num", text: String(p.attempt) }),
        ...(remote ? [el("td", { class: "worker", text: shown(workerOf(job, p.attempt) || "") })] : []),
        el("td", {}, swatch(p.phase), p.phase + (p.performed ? "" : " (decided)")),
        el("td", { class: "num", text: duration(p.start_secs !== null ? p.start_secs : p.end_secs) }),
        el("td", { class: "num", text: p.start_secs !== null ? duration(p.end_secs - p.start_secs) : "" }),
        el("td", {}, p.passed ? "pass" : el("span", { class: "error", text: "fail: " + errorText(p.error) }))));
    }
    table.append(body);
    details.append(table);
  }

  // ---- table ----------------------------------------------------------
  // A job that failed shows its error in red; one that got past its error
  // (fixed) shows it muted, as what came before the fix.
  function earlierError(job) { return job.last_error !== null && job.status !== "failed"; }
  function lastErrorCell(job) {
    if (!job.last_error) return el("td");
    if (!earlierError(job)) return el("td", { class: "error", text: job.last_error.message });
    return el("td", { class: "error earlier", title: "an earlier try's error; the job got past it" },
      el("span", { class: "note", text: job.status === "fixed" ? "before the fix: " : "earlier: " }), job.last_error.message);
  }
  function jobTable() {
    const section = el("section", { id: "jobs" }, el("h2", { text: "Jobs" }));
    const columns = [
      { name: "job", key: (job) => job.name.toLowerCase(), cell: (job, i) => el("td", { class: "name", title: shown(job.name) }, jobLink(i)) },
      { name: "status", key: (job) => STATUSES.indexOf(statusOf(job)), cell: (job) => el("td", {}, swatch(statusOf(job)), statusOf(job)) },
      { name: "tries", num: true, key: (job) => job.tries, cell: (job) => el("td", { class: "num", text: String(job.tries) }) },
      { name: "worker", remote: true, key: (job) => workerOf(job, job.tries), cell: (job) => el("td", { class: "worker", title: "the worker of its last try", text: shown(workerOf(job, job.tries) || "") }) },
      { name: "time", num: true, key: (job) => job.time_secs, cell: (job) => el("td", { class: "num", text: duration(job.time_secs) }) },
      { name: "started", num: true, timed: true, key: (job) => firstStart(job), cell: (job) => el("td", { class: "num", text: duration(firstStart(job)) }) },
      { name: "waited", num: true, timed: true, key: (job) => waited(job), cell: (job) => el("td", { class: "num", text: duration(waited(job)) }) },
      { name: "last error", key: (job) => (job.last_error ? job.last_error.message : ""), cell: lastErrorCell },
    ].filter((column) => (timed || !column.timed) && (remote || !column.remote));
    const head = el("tr");
    const body = el("tbody");
    const rows = jobs.map((job, i) => {
      const row = el("tr", { "data-job": String(i), onclick: (event) => { if (!event.target.classList.contains("job-link")) select(i); } });
      for (const column of columns) row.append(column.cell(job, i));
      return row;
    });
    body.append(...rows);
    let sorted = { column: -1, ascending: true };
    columns.forEach((column, c) => {
      const th = el("th", { class: column.num ? "num" : "", text: column.name, scope: "col", title: "sort by " + column.name });
      th.addEventListener("click", () => {
        sorted = { column: c, ascending: sorted.column === c ? !sorted.ascending : true };
        for (const other of head.children) other.removeAttribute("aria-sort");
        th.setAttribute("aria-sort", sorted.ascending ? "ascending" : "descending");
        const order = jobs.map((job, i) => i);
        const key = (i) => column.key(jobs[i]);
        order.sort((a, b) => {
          const ka = key(a), kb = key(b);
          // Missing values last, whichever the direction.
          if (ka === null || kb === null) return (ka === null) - (kb === null) || a - b;
          const by = ka < kb ? -1 : ka > kb ? 1 : 0;
          return (sorted.ascending ? by : -by) || a - b;
        });
        body.append(...order.map((i) => rows[i]));
      });
      head.append(th);
    });
    selectListeners.push((selected) => rows.forEach((row, i) => row.classList.toggle("selected", i === selected)));
    section.append(el("table", { class: "jobs" }, el("thead", {}, head), body));
    return section;
  }

  let selectedJob = null;
  function notify() {
    if (selectedJob !== null) for (const listener of selectListeners) listener(selectedJob);
  }
  function select(i) {
    selectedJob = i;
    showDetails(i);
    notify();
  }

  page.replaceChildren();
  document.title = "dojobber run: " + jobs.length + " jobs";
  page.append(el("h1", { text: "dojobber run" }));
  page.append(summary(), failures());
  const timelineSection = el("div");
  const concurrencySection = el("div");
  page.append(timelineSection, concurrencySection, graph(), jobTable());
  // The charts take the width of a section (less its padding and border),
  // known once the page is laid out.
  const available = timelineSection.getBoundingClientRect().width - 30;
  timelineSection.replaceWith(timeline(available));
  concurrencySection.replaceWith(concurrencyChart(available));
  for (const step of afterLayout) step();
  // A link can open the page on a job: run.html#job=NAME.
  const wanted = /^#job=(.*)$/.exec(window.location.hash);
  if (wanted) {
    let name = null;
    try { name = decodeURIComponent(wanted[1]); } catch (error) { name = null; }
    if (name !== null && index.has(name)) select(index.get(name));
  }
}());
