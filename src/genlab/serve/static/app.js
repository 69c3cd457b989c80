// genlab serve: the behaviour of the runs, run and compare pages.
// Plain JavaScript run as is by the browser: no framework, no build step, nothing fetched
// from anywhere but this server. Text that comes from run folders (names, errors, metric
// names) is always inserted as text, never as markup.
"use strict";

const POLL_MS = 2000; // how often the pages ask the server what changed
const METRICS_PAGE = 5000; // the most records one /metrics answer holds
const MAX_SLIDERS = 8; // decode.png takes at most 8 coordinates
const SLIDER_RANGE = 3; // sliders move this many standard deviations either way (server: 5)
const CLASS_COLOURS = [
  "#1f6feb",
  "#e8590c",
  "#2f9e44",
  "#c2255c",
  "#7048e8",
  "#0c8599",
  "#f08c00",
  "#5c940d",
  "#a61e4d",
  "#495057",
  "#3b5bdb",
  "#d9480f",
  "#087f5b",
  "#862e9c",
  "#e67700",
];
const SERIES_COLOURS = ["#1f6feb", "#94b8f5", "#e8590c", "#2f9e44", "#7048e8"];

// -- small helpers ----------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

/** An element with attributes (``text`` sets its text, ``class`` its class) and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** A small square of colour for legends. */
function swatch(colour) {
  const node = el("span", { class: "swatch" });
  node.style.backgroundColor = colour;
  return node;
}

const isNumber = (v) => typeof v === "number" && Number.isFinite(v);

/** A number in at most four significant digits, without trailing zeros. */
function fmt(value) {
  if (!isNumber(value)) return value === null || value === undefined ? "—" : String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-4)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

function ago(mtime) {
  if (!isNumber(mtime)) return "—";
  const s = Math.max(0, Date.now() / 1000 - mtime);
  if (s < 5) return "just now";
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

const oneLine = (text) => String(text).split(/\r?\n/)[0].slice(0, 400);

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Call ``task`` with the newest argument only: while one call runs, later ones wait and
 * all but the last of them are dropped (sliders never queue up work on the server). */
function latestOnly(task) {
  let running = false;
  let waiting = null;
  const run = (arg) => {
    if (running) {
      waiting = { arg };
      return;
    }
    running = true;
    Promise.resolve()
      .then(() => task(arg))
      .catch(() => {})
      .finally(() => {
        running = false;
        if (waiting) {
          const next = waiting.arg;
          waiting = null;
          run(next);
        }
      });
  };
  return run;
}

// -- talking to the server --------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The server's one-line {"error": ...} of a failed response, or its status line. */
async function errorOf(response) {
  let message = `${response.status} ${response.statusText || "error"}`.trim();
  try {
    const body = await response.json();
    if (body && typeof body.error === "string" && body.error) message = body.error;
  } catch (_) {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, oneLine(message));
}

const BUSY_RETRIES = [400, 1200]; // waits (ms) before asking again when the server is busy

/** fetch, asking again (twice, after a pause) while the server answers 503 (its model queue
 * is full); the last answer is returned whatever it is. */
async function request(url) {
  for (let attempt = 0; ; attempt += 1) {
    let response;
    try {
      response = await fetch(url, { cache: "no-store" });
    } catch (_) {
      throw new ApiError(0, "the server cannot be reached (is genlab serve still running?)");
    }
    if (response.status !== 503 || attempt >= BUSY_RETRIES.length) return response;
    await new Promise((resolve) => setTimeout(resolve, BUSY_RETRIES[attempt]));
  }
}

async function getJSON(url) {
  const response = await request(url);
  if (!response.ok) throw await errorOf(response);
  try {
    return await response.json();
  } catch (_) {
    throw new ApiError(response.status, `${url} did not answer JSON`);
  }
}

/** Fetch a PNG and show it in ``img``; resolves to {seconds (server compute, from the
 * X-Genlab-Seconds header, or null), elapsed (seconds in the browser)}. The image's
 * data-seq counts the pictures it has shown. */
async function loadImage(img, url) {
  const start = performance.now();
  const response = await request(url);
  if (!response.ok) throw await errorOf(response);
  const blob = await response.blob();
  const seconds = parseFloat(response.headers.get("X-Genlab-Seconds") || "");
  const objectUrl = URL.createObjectURL(blob);
  await new Promise((resolve, reject) => {
    img.onload = resolve;
    img.onerror = () => reject(new ApiError(0, "the server's picture could not be decoded"));
    img.src = objectUrl;
  });
  if (img.dataset.objectUrl) URL.revokeObjectURL(img.dataset.objectUrl);
  img.dataset.objectUrl = objectUrl;
  img.dataset.url = url;
  img.dataset.seq = String(Number(img.dataset.seq || 0) + 1);
  img.hidden = false;
  return {
    seconds: Number.isFinite(seconds) ? seconds : null,
    elapsed: (performance.now() - start) / 1000,
  };
}

function latencyText(what, timing) {
  let text = `${what} in ${timing.elapsed.toFixed(2)} s`;
  if (timing.seconds !== null) text += ` (model ${timing.seconds.toFixed(2)} s)`;
  return text;
}

// -- messages ---------------------------------------------------------------------------------

/** Show ``text`` (one line) in a message element, or hide it when text is empty. */
function say(node, text) {
  if (!node) return;
  node.textContent = text ? oneLine(text) : "";
  node.title = text ? String(text) : "";
  node.hidden = !text;
}

// The page's error line: several sources (the poller, the page load) may each hold a
// message; the newest one still standing is shown.
const pageErrors = new Map();
function pageError(source, text) {
  pageErrors.delete(source);
  if (text) pageErrors.set(source, oneLine(text));
  const shown = [...pageErrors.values()].pop();
  say($("error"), shown || "");
}

function setLive(ok, text) {
  const node = $("live");
  if (!node) return;
  node.classList.toggle("ok", ok);
  node.classList.toggle("offline", !ok);
  node.textContent = text;
}

function statusBadge(status, node = el("span"), detail = null) {
  const value = status || "unknown";
  node.className = `status ${value.split(" ")[0]}`;
  node.textContent = value;
  node.dataset.status = value;
  node.title = detail && detail !== value ? detail : "";
  return node;
}

function headlineText(headline) {
  if (!headline || typeof headline !== "object") return null;
  const unit = headline.unit ? ` ${headline.unit}` : "";
  return { name: headline.name || "", value: `${fmt(headline.value)}${unit}` };
}

/** Poll ``fn`` every POLL_MS, the next call only once the last one finished. */
function every(fn) {
  const tick = async () => {
    try {
      await fn();
    } finally {
      setTimeout(tick, POLL_MS);
    }
  };
  return tick();
}

/** Ask for /api/runs; keeps the live indicator and the page's error line up to date. */
async function pollRuns() {
  try {
    const data = await getJSON("/api/runs");
    pageError("poll", null);
    setLive(true, `live · ${new Date().toLocaleTimeString()}`);
    return data;
  } catch (error) {
    pageError("poll", `runs: ${error.message}`);
    setLive(false, error.status === 0 ? "offline" : "error");
    return null;
  }
}

// -- the runs page ----------------------------------------------------------------------------

function initRunsPage() {
  const body = $("runs-body");
  const table = $("runs-table");
  const filter = $("runs-filter");
  const compareButton = $("compare-selected");
  const selectAll = $("select-all");
  const selected = new Set();
  const rows = new Map();
  const cards = new Map();
  let version = null;
  let first = true;
  let latest = [];

  const updateSelection = () => {
    for (const name of [...selected]) if (!rows.has(name)) selected.delete(name);
    compareButton.disabled = selected.size === 0;
    compareButton.textContent = selected.size
      ? `Compare selected (${selected.size})`
      : "Compare selected";
    selectAll.checked = rows.size > 0 && selected.size === rows.size;
  };

  compareButton.addEventListener("click", () => {
    const names = [...rows.keys()].filter((n) => selected.has(n));
    location.href = `/compare?runs=${names.map(encodeURIComponent).join(",")}`;
  });

  selectAll.addEventListener("change", () => {
    for (const [name, row] of rows) {
      if (selectAll.checked && !row.hidden) selected.add(name);
      else selected.delete(name);
      row.querySelector("input").checked = selected.has(name);
    }
    updateSelection();
  });

  const applyFilter = () => {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const row of rows.values()) {
      const text = row.dataset.search || "";
      row.hidden = !words.every((w) => text.includes(w));
    }
  };
  filter.addEventListener("input", applyFilter);

  const newRow = (name) => {
    const box = el("input", { type: "checkbox", "aria-label": `select ${name}` });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(name);
      else selected.delete(name);
      updateSelection();
    });
    const link = el("a", { href: `/runs/${encodeURIComponent(name)}`, class: "mono", text: name });
    const row = el(
      "tr",
      { "data-run": name, "data-testid": "run-row" },
      el("td", {}, box),
      el("td", { "data-col": "name" }, link),
      el("td", { "data-col": "family" }),
      el("td", { "data-col": "data" }),
      el("td", { "data-col": "status" }, el("span")),
      el("td", { "data-col": "epochs", class: "num" }),
      el("td", { "data-col": "step", class: "num" }),
      el("td", { "data-col": "headline", class: "headline" }),
      el("td", { "data-col": "updated" }),
    );
    if (!first) row.classList.add("fresh");
    return row;
  };

  const fillRow = (row, run) => {
    const cell = (col) => row.querySelector(`[data-col="${col}"]`);
    cell("family").textContent = run.family || "—";
    cell("data").textContent = run.data || "—";
    statusBadge(run.status, cell("status").firstChild, run.status_detail);
    row.dataset.status = run.status || "unknown";
    cell("epochs").textContent = fmt(run.epochs);
    cell("step").textContent = fmt(run.step);
    const head = cell("headline");
    head.replaceChildren();
    const h = headlineText(run.headline);
    if (h) head.append(el("span", { class: "metric-name", text: h.name }), h.value);
    else head.textContent = "not evaluated";
    const updated = cell("updated");
    updated.textContent = ago(run.updated);
    updated.title = isNumber(run.updated) ? new Date(run.updated * 1000).toLocaleString() : "";
    row.dataset.search = [run.name, run.family, run.data, run.status].join(" ").toLowerCase();
  };

  const newCard = (run) =>
    el(
      "div",
      { class: "card error-card", "data-run": run.name, "data-testid": "error-card" },
      el("h3", { text: run.name }),
      el("p", { text: run.error }),
    );

  const render = (runs) => {
    latest = runs;
    const seen = new Set();
    for (const run of runs) {
      seen.add(run.name);
      if (run.error) {
        rows.get(run.name)?.remove();
        rows.delete(run.name);
        let card = cards.get(run.name);
        if (!card) {
          card = newCard(run);
          cards.set(run.name, card);
        }
        card.querySelector("p").textContent = run.error;
        $("error-cards").append(card);
        continue;
      }
      cards.get(run.name)?.remove();
      cards.delete(run.name);
      let row = rows.get(run.name);
      if (!row) {
        row = newRow(run.name);
        rows.set(run.name, row);
      }
      fillRow(row, run);
      body.append(row); // (re)appended in the server's order
    }
    for (const [name, row] of [...rows]) {
      if (!seen.has(name)) {
        row.remove();
        rows.delete(name);
      }
    }
    for (const [name, card] of [...cards]) {
      if (!seen.has(name)) {
        card.remove();
        cards.delete(name);
      }
    }
    $("broken").hidden = cards.size === 0;
    $("runs-empty").hidden = runs.length > 0;
    const training = runs.filter((r) => r.status === "training").length;
    let count = `${rows.size} run${rows.size === 1 ? "" : "s"}`;
    if (training) count += ` · ${training} training`;
    if (cards.size) count += ` · ${cards.size} unreadable`;
    $("runs-count").textContent = count;
    table.dataset.count = String(rows.size);
    applyFilter();
    updateSelection();
    first = false;
  };

  every(async () => {
    const data = await pollRuns();
    if (!data) return;
    if (data.version !== version || first) {
      version = data.version;
      table.dataset.version = String(version);
      render(Array.isArray(data.runs) ? data.runs : []);
    } else {
      for (const run of latest) {
        const row = rows.get(run.name);
        if (row) row.querySelector('[data-col="updated"]').textContent = ago(run.updated);
      }
    }
    table.dataset.polls = String(Number(table.dataset.polls || 0) + 1);
  });
}

// -- plotting ---------------------------------------------------------------------------------

/** Round tick positions covering [lo, hi], about ``count`` of them. */
function niceTicks(lo, hi, count = 5) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => span / s <= count) || raw;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return ticks;
}

/** A canvas the size it is shown at, in device pixels; returns its 2-D context in CSS pixels. */
function sizedContext(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth));
  const height = Math.max(1, Math.round(canvas.clientHeight));
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height };
}

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** Line plot of ``series`` ([{label, colour, points: [[x, y]], width}]) on ``canvas``, with
 * markers on series of at most 60 points.
 * Returns the layout (for hover read-outs) and sets data-points to the points drawn. */
function plotLines(canvas, series, { logY = false, xLabel = "step", guideX = null } = {}) {
  const { ctx, width, height } = sizedContext(canvas);
  const ink = cssVar("--ink", "#1d232b");
  const muted = cssVar("--muted", "#5f6b7a");
  const line = cssVar("--line", "#dde2e8");
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";
  const total = series.reduce((n, s) => n + s.points.length, 0);
  canvas.dataset.points = String(total);
  if (!total) {
    ctx.fillStyle = muted;
    ctx.textAlign = "center";
    ctx.fillText("no metrics yet", width / 2, height / 2);
    return null;
  }
  const usable = logY && series.every((s) => s.points.every(([, y]) => y > 0));
  const ty = (y) => (usable ? Math.log10(y) : y);
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const s of series) {
    for (const [x, y] of s.points) {
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, ty(y));
      y1 = Math.max(y1, ty(y));
    }
  }
  if (x0 === x1) {
    x0 -= 1;
    x1 += 1;
  }
  if (y0 === y1) {
    y0 -= Math.abs(y0) * 0.1 || 1;
    y1 += Math.abs(y1) * 0.1 || 1;
  }
  const pad = (y1 - y0) * 0.06;
  y0 -= pad;
  y1 += pad;
  const yTicks = niceTicks(y0, y1, 5);
  const labels = yTicks.map((t) => (usable ? fmt(10 ** t) : fmt(t)));
  const left = 14 + Math.max(...labels.map((l) => ctx.measureText(l).width));
  const box = { left, right: width - 12, top: 10, bottom: height - 30 };
  const sx = (x) => box.left + ((x - x0) / (x1 - x0)) * (box.right - box.left);
  const sy = (y) => box.bottom - ((ty(y) - y0) / (y1 - y0)) * (box.bottom - box.top);

  ctx.strokeStyle = line;
  ctx.lineWidth = 1;
  ctx.fillStyle = muted;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  yTicks.forEach((t, k) => {
    const y = box.bottom - ((t - y0) / (y1 - y0)) * (box.bottom - box.top);
    ctx.beginPath();
    ctx.moveTo(box.left, Math.round(y) + 0.5);
    ctx.lineTo(box.right, Math.round(y) + 0.5);
    ctx.stroke();
    ctx.fillText(labels[k], box.left - 6, y);
  });
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of niceTicks(x0, x1, Math.max(2, Math.floor((box.right - box.left) / 90)))) {
    const x = sx(t);
    ctx.beginPath();
    ctx.moveTo(Math.round(x) + 0.5, box.bottom);
    ctx.lineTo(Math.round(x) + 0.5, box.bottom + 4);
    ctx.stroke();
    ctx.fillText(fmt(t), x, box.bottom + 6);
  }
  ctx.textAlign = "right";
  ctx.fillText(xLabel, box.right, box.bottom + 18);
  ctx.strokeStyle = muted;
  ctx.beginPath();
  ctx.moveTo(box.left + 0.5, box.top);
  ctx.lineTo(box.left + 0.5, box.bottom + 0.5);
  ctx.lineTo(box.right, box.bottom + 0.5);
  ctx.stroke();

  ctx.save();
  ctx.beginPath();
  ctx.rect(box.left, box.top - 4, box.right - box.left + 4, box.bottom - box.top + 8);
  ctx.clip();
  for (const s of series) {
    ctx.strokeStyle = s.colour;
    ctx.fillStyle = s.colour;
    ctx.lineWidth = s.width || 1.6;
    ctx.beginPath();
    s.points.forEach(([x, y], k) => (k ? ctx.lineTo(sx(x), sy(y)) : ctx.moveTo(sx(x), sy(y))));
    ctx.stroke();
    if (s.points.length <= 60) {
      for (const [x, y] of s.points) {
        ctx.beginPath();
        ctx.arc(sx(x), sy(y), 2.8, 0, Math.PI * 2);
        ctx.fill();
      }
    }
  }
  if (guideX !== null) {
    ctx.strokeStyle = ink;
    ctx.globalAlpha = 0.35;
    ctx.beginPath();
    ctx.moveTo(Math.round(sx(guideX)) + 0.5, box.top);
    ctx.lineTo(Math.round(sx(guideX)) + 0.5, box.bottom);
    ctx.stroke();
    ctx.globalAlpha = 1;
  }
  ctx.restore();
  return {
    box,
    x0,
    x1,
    invertX: (px) => x0 + ((px - box.left) / (box.right - box.left)) * (x1 - x0),
  };
}

// -- the run page -----------------------------------------------------------------------------

function initRunPage() {
  const name = decodeURIComponent(location.pathname.split("/")[2] || "");
  const base = `/api/runs/${encodeURIComponent(name)}`;
  document.title = `genlab · ${name}`;
  $("run-name").textContent = name;
  const state = { info: null, updated: null, status: null, latent: null };
  const curves = makeCurves(base);

  // the run's error card; ``fatal`` (the run cannot be opened at all) hides the panels
  const showRunError = (text, fatal = false) => {
    say($("run-error-text"), text);
    $("run-error").hidden = !text;
    $("panels").hidden = Boolean(text) && fatal;
  };

  const refreshInfo = async () => {
    const info = await getJSON(base);
    state.info = info;
    renderSummary(info);
    renderLatest(info, state.updated);
    return info;
  };

  const start = async () => {
    let info;
    try {
      info = await refreshInfo();
    } catch (error) {
      statusBadge("error", $("run-status"));
      showRunError(error.message, true);
      return false;
    }
    showRunError(info.error || "");
    setupSample(base, info);
    setupChain(base, info);
    state.latent = setupLatent(base, info);
    await curves.fetch().catch((e) => pageError("metrics", `metrics: ${e.message}`));
    return true;
  };

  let started = start();
  every(async () => {
    const data = await pollRuns();
    if (!data) return;
    const entry = (data.runs || []).find((r) => r.name === name);
    if (!entry) {
      pageError("watch", `the run ${name} is no longer in the runs folder`);
      return;
    }
    pageError("watch", null);
    if (!(await started)) {
      // it could not be opened: try again once the server lists it without an error
      if (entry.error) showRunError(entry.error, true);
      else started = start();
      return;
    }
    const changed = entry.updated !== state.updated || entry.status !== state.status;
    const wasKnown = state.updated !== null;
    const trainingEnded = state.status === "training" && entry.status !== "training";
    state.updated = entry.updated;
    state.status = entry.status;
    showRunError(entry.error || "");
    statusBadge(entry.status, $("run-status"), entry.status_detail);
    if (entry.status === "training" || changed) {
      try {
        await curves.fetch();
        pageError("metrics", null);
      } catch (error) {
        pageError("metrics", `metrics: ${error.message}`);
      }
    }
    if (changed && wasKnown) {
      try {
        await refreshInfo();
        pageError("info", null);
      } catch (error) {
        pageError("info", error.message);
      }
    }
    if (trainingEnded && state.latent) state.latent.reload(); // its weights are final now
  });
}

function renderSummary(info) {
  statusBadge(info.status, $("run-status"), info.status_detail);
  const run = info.run || {};
  const config = info.config || {};
  const data = run.data || {};
  const shape = run.data_info && Array.isArray(run.data_info.shape) ? run.data_info.shape : null;
  const train = config.train || {};
  const facts = [
    ["family", info.family || run.family],
    ["data", data.name ? `${data.name}${shape ? ` (${shape.join("×")})` : ""}` : null],
    [
      "epochs",
      isNumber(run.epochs_completed)
        ? `${run.epochs_completed}${isNumber(train.epochs) ? ` of ${train.epochs}` : ""}`
        : train.epochs,
    ],
    ["steps", run.steps],
    ["parameters", isNumber(run.parameters) ? run.parameters.toLocaleString() : null],
    ["train images/s", run.train_images_per_s],
    ["train time", isNumber(run.train_seconds) ? `${fmt(run.train_seconds)} s` : null],
    ["device", run.device],
    ["weights", run.exported_from],
  ];
  const list = $("run-facts");
  list.replaceChildren();
  for (const [key, value] of facts) {
    if (value === null || value === undefined || value === "") continue;
    const shown = isNumber(value) ? fmt(value) : String(value);
    const wide = shown.length > 18 ? "wide-fact" : null;
    list.append(
      el("div", { class: wide }, el("dt", { text: key }), el("dd", { text: shown, title: shown })),
    );
  }
  const metrics =
    info.eval && typeof info.eval === "object" ? info.eval.metrics || info.eval : null;
  const table = $("eval-table");
  table.replaceChildren();
  if (metrics) {
    for (const [key, m] of Object.entries(metrics)) {
      const value = m && typeof m === "object" ? m.value : m;
      if (!isNumber(value)) continue;
      const unit = m && typeof m === "object" && m.unit ? ` ${m.unit}` : "";
      table.append(
        el(
          "div",
          { "data-metric": key },
          el("dt", { text: key, title: key }),
          el("dd", { text: `${fmt(value)}${unit}` }),
        ),
      );
    }
  }
  $("eval-wrap").hidden = table.children.length === 0;
}

function renderLatest(info, updated) {
  const img = $("latest-grid");
  const caption = $("latest-caption");
  if (!info.latest_grid) {
    img.hidden = true;
    caption.textContent = "no sample grid yet";
    return;
  }
  const url = `${info.latest_grid}${info.latest_grid.includes("?") ? "&" : "?"}v=${updated ?? ""}`;
  if (img.dataset.wanted === url) return;
  img.dataset.wanted = url;
  const file = decodeURIComponent(info.latest_grid.split("/").pop().split("?")[0]);
  loadImage(img, url)
    .then(() => {
      caption.textContent = file;
    })
    .catch((error) => {
      caption.textContent = `${file}: ${error.message}`;
    });
}

/** The curves panel: metrics records fetched incrementally and drawn on a canvas. */
function makeCurves(base) {
  const canvas = $("curves");
  const select = $("curve-metric");
  const logBox = $("curve-log");
  const readout = $("curves-readout");
  let records = [];
  let next = 0;
  let layout = null;
  let shown = [];

  const metricNames = () => {
    const names = new Set();
    for (const r of records) {
      for (const [key, value] of Object.entries(r)) {
        if (!isNumber(value) || key === "epoch" || key === "step") continue;
        names.add(key.replace(/^(train|val)\//, ""));
      }
    }
    const sorted = [...names].sort();
    const first = ["loss", "elbo"].filter((k) => names.has(k));
    return [...first, ...sorted.filter((k) => !first.includes(k))];
  };

  const seriesOf = (metric) => {
    const perStep = [];
    const trainEpoch = [];
    const val = [];
    const other = [];
    for (const r of records) {
      if (!isNumber(r.step)) continue;
      if (r.kind === "train") {
        if (isNumber(r[metric])) perStep.push([r.step, r[metric]]);
      } else if (r.kind === "epoch") {
        if (isNumber(r[`train/${metric}`])) trainEpoch.push([r.step, r[`train/${metric}`]]);
        if (isNumber(r[`val/${metric}`])) val.push([r.step, r[`val/${metric}`]]);
        if (isNumber(r[metric])) other.push([r.step, r[metric]]);
      }
    }
    return [
      { label: "training (every 100 steps)", colour: SERIES_COLOURS[0], points: perStep },
      { label: "training (epoch mean)", colour: SERIES_COLOURS[1], points: trainEpoch },
      { label: "validation (per epoch)", colour: SERIES_COLOURS[2], points: val, width: 2 },
      { label: `${metric} (per epoch)`, colour: SERIES_COLOURS[3], points: other },
    ].filter((s) => s.points.length);
  };

  const draw = (guideX = null) => {
    const metric = select.value;
    shown = metric ? seriesOf(metric) : [];
    layout = plotLines(canvas, shown, { logY: logBox.checked, guideX });
    const legend = $("curves-legend");
    legend.replaceChildren(...shown.map((s) => el("span", {}, swatch(s.colour), s.label)));
  };

  const updateChoices = () => {
    const names = metricNames();
    const current = select.value;
    const have = [...select.options].map((o) => o.value);
    if (names.join("\n") !== have.join("\n")) {
      select.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
      select.value = names.includes(current) ? current : names[0] || "";
    }
  };

  const fetchNew = async () => {
    for (let page = 0; page < 50; page += 1) {
      const data = await getJSON(`${base}/metrics?after=${next}`);
      const got = Array.isArray(data.records) ? data.records : [];
      if (isNumber(data.next) && data.next < next) {
        // the log was cut back (a resume after a crash drops records): read it again
        records = [];
        next = 0;
        continue;
      }
      records.push(...got);
      next = isNumber(data.next) ? data.next : next + got.length;
      if (got.length < METRICS_PAGE) break;
    }
    canvas.dataset.records = String(records.length);
    canvas.dataset.next = String(next);
    updateChoices();
    draw();
  };

  select.addEventListener("change", () => draw());
  logBox.addEventListener("change", () => draw());
  new ResizeObserver(() => draw()).observe(canvas);
  canvas.addEventListener("mousemove", (event) => {
    if (!layout) return;
    const rect = canvas.getBoundingClientRect();
    const x = layout.invertX(event.clientX - rect.left);
    const parts = [];
    let at = null;
    for (const s of shown) {
      let best = null;
      for (const p of s.points) if (!best || Math.abs(p[0] - x) < Math.abs(best[0] - x)) best = p;
      if (best) {
        at = at ?? best[0];
        parts.push(`${s.label}: ${fmt(best[1])} (step ${best[0]})`);
      }
    }
    readout.textContent = parts.join(" · ");
    draw(at);
  });
  canvas.addEventListener("mouseleave", () => {
    readout.textContent = "";
    draw();
  });
  return { fetch: fetchNew };
}

function limitOf(info, key, fallback) {
  const limits = info.limits || {};
  return isNumber(limits[key]) ? limits[key] : fallback;
}

function setupSample(base, info) {
  const caps = info.capabilities || {};
  const form = $("sample-form");
  if (!caps.sample) {
    form.hidden = true;
    $("sample-unavailable").hidden = false;
    return;
  }
  $("sample-n").max = String(limitOf(info, "n", 64));
  $("sample-temperature-field").hidden = !caps.temperature;
  const maxSteps = Math.min(
    caps.max_steps || limitOf(info, "steps", 1000),
    limitOf(info, "steps", 1000),
  );
  $("sample-steps-field").hidden = !caps.steps;
  $("sample-steps").max = String(maxSteps);
  if (isNumber(caps.default_steps)) $("sample-steps").placeholder = String(caps.default_steps);
  const classes = Array.isArray(caps.classes) ? caps.classes : [];
  $("sample-class-field").hidden = classes.length === 0;
  $("sample-class").replaceChildren(
    el("option", { value: "", text: "any (the data's mix)" }),
    ...classes.map((c, k) => el("option", { value: String(k), text: `${k}: ${c}` })),
  );
  $("sample-guidance-field").hidden = !caps.guidance;

  const button = $("sample-button");
  const draw = async () => {
    const params = new URLSearchParams({ seed: $("sample-seed").value, n: $("sample-n").value });
    const optional = [
      ["temperature", caps.temperature && $("sample-temperature").value],
      ["steps", caps.steps && $("sample-steps").value],
      ["class", classes.length && $("sample-class").value],
      ["guidance", caps.guidance && $("sample-guidance").value],
    ];
    for (const [key, value] of optional) if (value) params.set(key, value);
    button.disabled = true;
    button.classList.add("busy");
    try {
      const timing = await loadImage($("sample-image"), `${base}/sample.png?${params}`);
      const n = Number(params.get("n"));
      $("sample-latency").textContent = latencyText(
        `${n} image${n === 1 ? "" : "s"} (seed ${params.get("seed")})`,
        timing,
      );
      say($("sample-error"), "");
    } catch (error) {
      say($("sample-error"), `sample: ${error.message}`);
    } finally {
      button.disabled = false;
      button.classList.remove("busy");
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    draw();
  });
  $("sample-next").addEventListener("click", () => {
    const seed = $("sample-seed");
    seed.value = String((Number(seed.value) || 0) + 1);
    draw();
  });
  button.disabled = false; // the buttons stay disabled until they do something
  $("sample-next").disabled = false;
}

function setupChain(base, info) {
  const caps = info.capabilities || {};
  if (!caps.steps) return;
  $("chain-panel").hidden = false;
  const iterative = caps.steps === "iterative";
  $("chain-title").textContent = iterative ? "Sampler steps" : "Markov chain";
  $("chain-note").textContent = iterative
    ? "Each row is one sample, each column the image at a later step of the sampler."
    : "Each row is one chain, each column a later state: watch it mix.";
  const maxSteps = Math.min(
    caps.max_steps || limitOf(info, "steps", 1000),
    limitOf(info, "steps", 1000),
  );
  const steps = $("chain-steps");
  steps.max = String(maxSteps);
  const wanted = isNumber(caps.default_steps) ? caps.default_steps : 200;
  steps.value = String(Math.min(wanted, maxSteps));
  $("chain-n").max = String(limitOf(info, "chain_rows", 8));
  const button = $("chain-button");
  $("chain-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = new URLSearchParams({
      seed: $("chain-seed").value,
      n: $("chain-n").value,
      steps: steps.value,
    });
    button.disabled = true;
    button.classList.add("busy");
    try {
      const timing = await loadImage($("chain-image"), `${base}/chain.png?${params}`);
      $("chain-latency").textContent = latencyText(`${params.get("steps")} steps`, timing);
      say($("chain-error"), "");
    } catch (error) {
      say($("chain-error"), `chain: ${error.message}`);
    } finally {
      button.disabled = false;
      button.classList.remove("busy");
    }
  });
  button.disabled = false;
}

// -- the latent explorer ----------------------------------------------------------------------

function setupLatent(base, info) {
  const caps = info.capabilities || {};
  if (!caps.latent) return null;
  $("latent-panel").hidden = false;
  const message = $("latent-error");
  const encoder = caps.latent === "encoder";
  const dim = isNumber(caps.latent_dim) ? caps.latent_dim : MAX_SLIDERS;
  $("interp-steps").max = String(limitOf(info, "interpolation_steps", 16));
  const explorer = encoder ? makeLatentMap(base, message) : null;

  // a conditional model decodes for a class: one choice for every picture of the panel
  const classes = Array.isArray(caps.classes) ? caps.classes : [];
  $("latent-class-field").hidden = classes.length === 0;
  $("latent-class").replaceChildren(
    ...classes.map((c, k) => el("option", { value: String(k), text: `${k}: ${c}` })),
  );
  const classParam = () => (classes.length ? `&class=${$("latent-class").value}` : "");

  // interpolation: between two picked test images (encoder), or two seeds of z (generator)
  const interpImg = $("interp-image");
  let lastPair = null;
  const interpolate = async (a, b, caption) => {
    const steps = $("interp-steps").value || "8";
    lastPair = [a, b, caption];
    try {
      const query = `a=${a}&b=${b}&steps=${steps}${classParam()}`;
      await loadImage(interpImg, `${base}/interpolate.png?${query}`);
      $("interp-caption").textContent = caption;
      interpImg.dataset.pair = `${a},${b}`;
      say(message, "");
    } catch (error) {
      say(message, `interpolate: ${error.message}`);
    }
  };
  if (encoder) {
    $("interp-note").textContent =
      "Shift-click two points on the map (or press “Pick two”): " +
      "the decoded straight line between their codes.";
    explorer.onPair = (a, b) => interpolate(a, b, `test #${a} → test #${b}`);
    $("interp-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const pair = explorer.pair();
      if (pair) interpolate(pair[0], pair[1], `test #${pair[0]} → test #${pair[1]}`);
      else say(message, "interpolate: pick two points on the map first");
    });
  } else {
    $("interp-note").textContent =
      "The decoded straight line between the latent vectors z of two seeds.";
    $("interp-a-field").hidden = false;
    $("interp-b-field").hidden = false;
    $("interp-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const a = $("interp-a").value;
      const b = $("interp-b").value;
      interpolate(a, b, `seed ${a} → seed ${b}`);
    });
  }

  // sliders along the leading principal directions (encoder) or the first z coordinates
  const count = Math.max(1, Math.min(limitOf(info, "coords", MAX_SLIDERS), dim));
  const range = Math.min(SLIDER_RANGE, limitOf(info, "coord_range", SLIDER_RANGE));
  $("decode-title").textContent = encoder
    ? "Move along the leading principal directions of the codes"
    : "Move along the first coordinates of z";
  const sliders = $("sliders");
  const inputs = [];
  for (let k = 0; k < count; k += 1) {
    const input = el("input", {
      type: "range",
      min: -range,
      max: range,
      step: 0.1,
      value: 0,
      id: `slider-${k}`,
      "data-testid": `slider-${k}`,
      "aria-label": encoder ? `principal direction ${k + 1}` : `z ${k + 1}`,
    });
    const label = el("label", {
      for: `slider-${k}`,
      id: `slider-label-${k}`,
      text: encoder ? `PC${k + 1}` : `z${k + 1}`,
    });
    const out = el("output", { for: `slider-${k}`, text: "0.0" });
    input.addEventListener("input", () => {
      out.textContent = Number(input.value).toFixed(1);
      decodeSoon();
    });
    sliders.append(label, input, out);
    inputs.push(input);
  }
  const decode = latestOnly(async () => {
    const coords = inputs.map((i) => Number(i.value).toFixed(2)).join(",");
    try {
      await loadImage($("decode-image"), `${base}/decode.png?coords=${coords}${classParam()}`);
      $("decode-image").dataset.coords = coords;
      say(message, "");
    } catch (error) {
      say(message, `decode: ${error.message}`);
    }
  });
  const decodeSoon = debounce(() => decode(), 120);
  $("interp-button").disabled = false;
  $("sliders-reset").disabled = false;
  $("sliders-reset").addEventListener("click", () => {
    for (const input of inputs) {
      input.value = "0";
      input.dispatchEvent(new Event("input"));
    }
  });
  if (explorer) {
    explorer.onVariance = (variance) => {
      variance.slice(0, count).forEach((v, k) => {
        if (isNumber(v))
          $(`slider-label-${k}`).textContent = `PC${k + 1} (${Math.round(v * 100)}%)`;
      });
    };
  }
  const manifold = caps.manifold ?? dim === 2;
  const drawManifold = () =>
    loadImage($("manifold-image"), `${base}/manifold.png?size=15${classParam()}`).catch((error) =>
      say(message, `manifold: ${error.message}`),
    );
  $("manifold").hidden = !manifold;
  decode();
  if (manifold) drawManifold();
  $("latent-class").addEventListener("change", () => {
    decode();
    if (manifold) drawManifold();
    if (lastPair) interpolate(...lastPair);
  });
  return {
    // the model changed (training ended): draw what depends on it again
    reload: () => {
      say(message, "");
      if (explorer) explorer.reload();
      decode();
      if (manifold) drawManifold();
    },
  };
}

/** The 2-D map of test codes: thumbnails from the sprite, coloured by class, zoom and pan,
 * click to inspect a point, shift-click (or "Pick two") to interpolate between two. */
function makeLatentMap(base, message) {
  $("latent-map-side").hidden = false;
  $("latent-map-controls").hidden = false;
  const canvas = $("latent-map");
  const pickButton = $("pick-two");
  const thumbsBox = $("latent-thumbs");
  const map = {
    points: [],
    classes: [],
    sprite: null,
    tile: 8,
    cols: 1,
    bounds: null,
    view: { scale: 1, tx: 0, ty: 0 },
    selected: null,
    pair: [],
    neighbours: new Set(),
    hover: null,
    picking: false,
    load: 0,
    selecting: 0,
  };
  const api = {
    onPair: null,
    onVariance: null,
    pair: () => (map.pair.length === 2 ? map.pair.map((k) => map.points[k].i) : null),
  };

  const colourOf = (label) =>
    label === null || label === undefined ? "#868e96" : CLASS_COLOURS[label % CLASS_COLOURS.length];

  const thumbSize = () => Math.max(8, Math.min(40, 16 * Math.sqrt(map.view.scale)));

  // data -> canvas (CSS pixels)
  const toScreen = (p, width, height) => {
    const b = map.bounds;
    const pad = 24;
    const bx = pad + ((p.x - b.x0) / (b.x1 - b.x0 || 1)) * (width - 2 * pad);
    const by = height - pad - ((p.y - b.y0) / (b.y1 - b.y0 || 1)) * (height - 2 * pad);
    return [bx * map.view.scale + map.view.tx, by * map.view.scale + map.view.ty];
  };

  const draw = () => {
    const { ctx, width, height } = sizedContext(canvas);
    ctx.clearRect(0, 0, width, height);
    canvas.dataset.points = String(map.points.length);
    if (!map.points.length) return;
    ctx.imageSmoothingEnabled = false;
    const size = thumbSize();
    const thumbs = thumbsBox.checked && map.sprite;
    map.points.forEach((p, k) => {
      const [x, y] = toScreen(p, width, height);
      if (x < -size || y < -size || x > width + size || y > height + size) return;
      if (thumbs) {
        ctx.fillStyle = colourOf(p.label);
        ctx.fillRect(x - size / 2 - 2, y - size / 2 - 2, size + 4, size + 4);
        const sx = (k % map.cols) * map.tile;
        const sy = Math.floor(k / map.cols) * map.tile;
        ctx.drawImage(
          map.sprite,
          sx,
          sy,
          map.tile,
          map.tile,
          x - size / 2,
          y - size / 2,
          size,
          size,
        );
      } else {
        ctx.fillStyle = colourOf(p.label);
        ctx.beginPath();
        ctx.arc(x, y, 3.5, 0, Math.PI * 2);
        ctx.fill();
      }
    });
    const ring = (k, colour, widthPx, text) => {
      if (k === null || k === undefined || !map.points[k]) return;
      const [x, y] = toScreen(map.points[k], width, height);
      const r = thumbs ? size / 2 + 5 : 7;
      ctx.strokeStyle = colour;
      ctx.lineWidth = widthPx;
      ctx.strokeRect(x - r, y - r, 2 * r, 2 * r);
      if (text) {
        ctx.font = "bold 13px system-ui, sans-serif";
        ctx.fillStyle = colour;
        ctx.textAlign = "left";
        ctx.textBaseline = "bottom";
        ctx.fillText(text, x + r + 2, y - r + 2);
      }
    };
    for (const k of map.neighbours) ring(k, "#f08c00", 2);
    ring(map.hover, "#495057", 1.5);
    ring(map.selected, "#111827", 3);
    map.pair.forEach((k, n) => ring(k, "#c2255c", 3, n ? "B" : "A"));
  };

  const hit = (event) => {
    const rect = canvas.getBoundingClientRect();
    const mx = event.clientX - rect.left;
    const my = event.clientY - rect.top;
    const radius = thumbsBox.checked && map.sprite ? thumbSize() / 2 + 3 : 7;
    let best = null;
    let bestD = Infinity;
    map.points.forEach((p, k) => {
      const [x, y] = toScreen(p, rect.width, rect.height);
      const d = Math.max(Math.abs(x - mx), Math.abs(y - my));
      if (d <= radius && d < bestD) {
        best = k;
        bestD = d;
      }
    });
    return best;
  };

  const className = (label) =>
    label === null || label === undefined ? "" : ` · ${map.classes[label] ?? `class ${label}`}`;

  const select = async (k) => {
    const ticket = (map.selecting += 1);
    map.selected = k;
    map.neighbours = new Set();
    canvas.dataset.selected = String(map.points[k].i);
    draw();
    const i = map.points[k].i;
    $("latent-detail").hidden = false;
    $("latent-detail-title").textContent = `test #${i}${className(map.points[k].label)}`;
    const list = $("latent-neighbours");
    list.replaceChildren();
    try {
      await Promise.all([
        loadImage($("latent-test"), `${base}/test/${i}.png`),
        loadImage($("latent-recon"), `${base}/reconstruction/${i}.png`),
      ]);
      const found = await getJSON(`${base}/neighbours/${i}?k=8`);
      if (ticket !== map.selecting) return; // another point was clicked meanwhile
      const indices = Array.isArray(found.neighbours) ? found.neighbours : [];
      const onMap = new Map(map.points.map((p, n) => [p.i, n]));
      map.neighbours = new Set(indices.filter((j) => onMap.has(j)).map((j) => onMap.get(j)));
      draw();
      const thumbs = indices.map((j) => {
        const img = el("img", { alt: `test #${j}`, "data-seq": 0 });
        const button = el(
          "button",
          { type: "button", title: `test #${j}`, "data-testid": "neighbour", "data-index": j },
          img,
        );
        button.addEventListener("click", () => {
          if (onMap.has(j)) select(onMap.get(j));
        });
        list.append(button);
        return [j, img];
      });
      say(message, "");
      // one at a time: each is a request to the model's queue
      for (const [j, img] of thumbs) {
        if (ticket !== map.selecting) return;
        await loadImage(img, `${base}/test/${j}.png`);
      }
    } catch (error) {
      say(message, `test #${i}: ${error.message}`);
    }
  };

  const addToPair = (k, fromSelection) => {
    if (map.pair.length >= 2) map.pair = [];
    if (fromSelection && map.pair.length === 0 && map.selected !== null && map.selected !== k) {
      map.pair = [map.selected];
    }
    if (!map.pair.includes(k)) map.pair.push(k);
    draw();
    canvas.dataset.pair = map.pair.map((n) => map.points[n].i).join(",");
    if (map.pair.length === 2 && api.onPair) {
      api.onPair(map.points[map.pair[0]].i, map.points[map.pair[1]].i);
    }
  };

  // pointer: a press that moves pans, a press that does not is a click
  let press = null;
  canvas.addEventListener("pointerdown", (event) => {
    press = { x: event.clientX, y: event.clientY, tx: map.view.tx, ty: map.view.ty, moved: false };
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (press) {
      const dx = event.clientX - press.x;
      const dy = event.clientY - press.y;
      if (press.moved || Math.hypot(dx, dy) > 4) {
        press.moved = true;
        canvas.classList.add("grabbing");
        map.view.tx = press.tx + dx;
        map.view.ty = press.ty + dy;
        draw();
      }
      return;
    }
    const k = hit(event);
    if (k !== map.hover) {
      map.hover = k;
      $("latent-hover").textContent =
        k === null ? "" : `test #${map.points[k].i}${className(map.points[k].label)}`;
      draw();
    }
  });
  canvas.addEventListener("pointerup", (event) => {
    const was = press;
    press = null;
    canvas.classList.remove("grabbing");
    if (!was || was.moved) return;
    const k = hit(event);
    if (k === null) return;
    if (map.picking) addToPair(k, false);
    else if (event.shiftKey) addToPair(k, true);
    else select(k);
  });
  canvas.addEventListener("pointercancel", () => {
    press = null;
    canvas.classList.remove("grabbing");
  });
  canvas.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      const rect = canvas.getBoundingClientRect();
      const mx = event.clientX - rect.left;
      const my = event.clientY - rect.top;
      const factor = Math.exp(-event.deltaY * 0.0015);
      const scale = Math.max(0.5, Math.min(40, map.view.scale * factor));
      const f = scale / map.view.scale;
      map.view.tx = mx - (mx - map.view.tx) * f;
      map.view.ty = my - (my - map.view.ty) * f;
      map.view.scale = scale;
      draw();
    },
    { passive: false },
  );
  $("latent-reset").addEventListener("click", () => {
    map.view = { scale: 1, tx: 0, ty: 0 };
    draw();
  });
  pickButton.addEventListener("click", () => {
    map.picking = !map.picking;
    pickButton.setAttribute("aria-pressed", String(map.picking));
    pickButton.textContent = map.picking ? "Picking two…" : "Pick two";
    if (map.picking) map.pair = [];
    draw();
  });
  thumbsBox.addEventListener("change", draw);
  pickButton.disabled = false;
  $("latent-reset").disabled = false;
  new ResizeObserver(draw).observe(canvas);

  const load = async () => {
    const method = $("latent-method").value;
    const wanted = $("latent-points").value;
    const ticket = (map.load += 1);
    canvas.classList.add("busy");
    try {
      const data = await getJSON(`${base}/latent?points=${wanted}&method=${method}`);
      if (ticket !== map.load) return;
      let spriteError = null;
      const spriteReady = data.sprite
        ? (async () => {
            const sprite = new Image();
            try {
              await loadImage(sprite, data.sprite);
              return sprite;
            } catch (error) {
              spriteError = error.message;
              return null;
            }
          })()
        : Promise.resolve(null);
      const points = Array.isArray(data.points) ? data.points : [];
      const tile = isNumber(data.tile) && data.tile > 0 ? data.tile : 8;
      const loaded = await spriteReady;
      if (ticket !== map.load) return;
      // the new map replaces the old one at once, thumbnails and all
      map.points = points;
      map.classes = Array.isArray(data.classes) ? data.classes : [];
      map.tile = tile;
      map.sprite = loaded;
      map.selected = null;
      map.pair = [];
      map.neighbours = new Set();
      map.view = { scale: 1, tx: 0, ty: 0 };
      const xs = points.map((p) => p.x);
      const ys = points.map((p) => p.y);
      map.bounds = {
        x0: Math.min(...xs),
        x1: Math.max(...xs),
        y0: Math.min(...ys),
        y1: Math.max(...ys),
      };
      if (loaded) {
        map.cols =
          isNumber(data.cols) && data.cols > 0
            ? data.cols
            : Math.max(1, Math.floor(loaded.naturalWidth / tile));
      } else if (data.sprite) {
        say(message, `latent thumbnails (showing dots): ${spriteError}`);
      }
      canvas.dataset.method = data.method || method;
      const variance = Array.isArray(data.explained_variance) ? data.explained_variance : [];
      const axes =
        (data.method || method) === "pca"
          ? variance
              .slice(0, 2)
              .map((v, k) => `PC${k + 1} ${Math.round(v * 100)}%`)
              .join(" · ")
          : "t-SNE of the codes";
      $("latent-axes").textContent = axes ? `${map.points.length} test images · ${axes}` : "";
      if (api.onVariance) api.onVariance(variance);
      const used = [
        ...new Set(map.points.map((p) => p.label).filter((l) => l !== null && l !== undefined)),
      ].sort((a, b) => a - b);
      $("latent-legend").replaceChildren(
        ...used.map((label) =>
          el("span", {}, swatch(colourOf(label)), map.classes[label] ?? String(label)),
        ),
      );
      if (map.sprite || !data.sprite) say(message, "");
      draw();
    } catch (error) {
      say(message, `latent: ${error.message}`);
    } finally {
      canvas.classList.remove("busy");
    }
  };
  $("latent-method").addEventListener("change", load);
  $("latent-points").addEventListener("change", load);
  api.reload = load;
  load();

  // for tests and for people poking in the console: where point k is drawn on the page
  window.genlab = window.genlab || {};
  window.genlab.latent = {
    count: () => map.points.length,
    screenPoint: (k) => {
      const rect = canvas.getBoundingClientRect();
      const [x, y] = toScreen(map.points[k], rect.width, rect.height);
      return { x: rect.left + x, y: rect.top + y, cx: x, cy: y, i: map.points[k].i };
    },
  };
  return api;
}

// -- the compare page -------------------------------------------------------------------------

function initComparePage() {
  const list = $("compare-runs");
  const button = $("compare-button");
  const status = $("compare-status");
  const frame = $("compare-frame");
  const wanted = new Set(
    (new URLSearchParams(location.search).get("runs") || "").split(",").filter(Boolean),
  );
  const boxes = new Map();
  let version = null;
  let started = false;

  const chosen = () => [...boxes].filter(([, box]) => box.checked).map(([name]) => name);
  const update = () => {
    const n = chosen().length;
    button.disabled = n === 0;
    $("compare-count").textContent = n ? `${n} selected` : "";
  };

  const render = (runs) => {
    const keep = new Set(chosen());
    const first = boxes.size === 0;
    list.replaceChildren();
    boxes.clear();
    for (const run of runs) {
      const box = el("input", { type: "checkbox", value: run.name, "data-run": run.name });
      box.checked = first ? wanted.has(run.name) : keep.has(run.name);
      box.disabled = Boolean(run.error);
      box.addEventListener("change", update);
      const h = headlineText(run.headline);
      const detail = run.error
        ? run.error
        : [run.family, run.data, run.status, h ? `${h.name} ${h.value}` : "not evaluated"]
            .filter(Boolean)
            .join(" · ");
      list.append(
        el(
          "li",
          { "data-testid": "compare-run" },
          el(
            "label",
            {},
            box,
            el(
              "span",
              {},
              el("span", { class: "mono", text: run.name }),
              el("span", { class: "muted", text: detail }),
            ),
          ),
        ),
      );
      boxes.set(run.name, box);
    }
    update();
  };

  const compare = async () => {
    const names = chosen();
    if (!names.length) return;
    history.replaceState(null, "", `/compare?runs=${names.map(encodeURIComponent).join(",")}`);
    $("compare-result").hidden = false;
    status.textContent = `comparing ${names.length} run${names.length === 1 ? "" : "s"}`;
    status.classList.add("busy");
    button.disabled = true;
    try {
      const data = await getJSON(`/api/compare?runs=${names.map(encodeURIComponent).join(",")}`);
      frame.onload = () => {
        try {
          const doc = frame.contentDocument;
          if (doc && doc.documentElement) {
            frame.style.height = `${doc.documentElement.scrollHeight + 24}px`;
          }
        } catch (_) {
          // a report from elsewhere keeps its default height
        }
        frame.dataset.loaded = String(Number(frame.dataset.loaded || 0) + 1);
      };
      // the report's own page (with its style) where there is one, else the server's html
      if (typeof data.url === "string" && data.url) {
        frame.removeAttribute("srcdoc");
        frame.src = data.url;
      } else if (typeof data.html === "string") {
        frame.removeAttribute("src");
        frame.srcdoc = data.html;
      } else {
        throw new ApiError(200, "the server's comparison has neither html nor url");
      }
      frame.hidden = false;
      const left =
        data.not_evaluated && typeof data.not_evaluated === "object"
          ? Object.keys(data.not_evaluated)
          : [];
      status.textContent = left.length
        ? `${names.length - left.length} of ${names.length} runs compared; not evaluated: ${left.join(", ")}`
        : `${names.length} run${names.length === 1 ? "" : "s"} compared`;
      pageError("compare", null);
    } catch (error) {
      status.textContent = "";
      pageError("compare", `compare: ${error.message}`);
    } finally {
      status.classList.remove("busy");
      update();
    }
  };
  button.addEventListener("click", compare);
  $("compare-none").addEventListener("click", () => {
    for (const box of boxes.values()) box.checked = false;
    update();
  });

  every(async () => {
    const data = await pollRuns();
    if (!data || data.version === version) return;
    version = data.version;
    render(Array.isArray(data.runs) ? data.runs : []);
    if (!started) {
      started = true;
      if (chosen().length) compare();
    }
  });
}

// -- start ------------------------------------------------------------------------------------

const PAGES = { runs: initRunsPage, run: initRunPage, compare: initComparePage };
document.addEventListener("DOMContentLoaded", () => {
  const init = PAGES[document.body.dataset.page];
  if (init) init();
});
