/* laurel console: the cluster, the boards, the live events and the request charts of the router
 * that served this page (docs/operations.md, "The console").
 *
 * Everything it shows comes from what needs no key: /metrics (the cluster's raft state and the
 * request counters, polled every 1.5 s), the board reads of API.md and the WebSocket. The admin
 * key, when an operator gives it, is held in one variable of this page (never in storage, a
 * cookie or the URL) and is sent only to GET /v1/cluster, which adds the replicas' addresses.
 * Every value from the server reaches the DOM as text (textContent), never as markup. */
"use strict";

const POLL_MS = 1500;
const CHART_POINTS = 120; /* three minutes at POLL_MS */
const FEED_MAX = 300;

const state = {
  adminKey: null, /* memory only */
  regions: [],
  prev: null, /* the previous /metrics sample, for rates */
  series: { t: [], rate: [], errors: [], p50: [], p99: [] },
  board: { id: "", cursor: null, shown: null },
  ws: null,
  wsBackoffMs: 500,
  topics: [],
  hiddenTopics: new Set(),
  hiddenTypes: new Set(),
  lastIndex: {}, /* region -> last player-event index: the resume point after a reconnect */
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    e.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
  }
  return e;
}

/* ---- Prometheus text (version 0.0.4) ------------------------------------------------------ */

/* Samples of @text as [{name, labels:{...}, value}]; comments and malformed lines skipped. */
function promParse(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (line === "" || line[0] === "#") continue;
    let i = 0;
    while (i < line.length && line[i] !== "{" && line[i] !== " ") i++;
    const name = line.slice(0, i);
    const labels = {};
    if (line[i] === "{") {
      i++;
      while (i < line.length && line[i] !== "}") {
        const eq = line.indexOf("=", i);
        if (eq < 0 || line[eq + 1] !== '"') return out;
        const key = line.slice(i, eq).trim();
        let v = "";
        let j = eq + 2;
        for (; j < line.length && line[j] !== '"'; j++) {
          if (line[j] === "\\" && j + 1 < line.length) {
            j++;
            v += line[j] === "n" ? "\n" : line[j];
          } else {
            v += line[j];
          }
        }
        labels[key] = v;
        i = j + 1;
        if (line[i] === ",") i++;
      }
      i++;
    }
    const value = parseFloat(line.slice(i).trim().split(/\s+/)[0]);
    if (name && !Number.isNaN(value)) out.push({ name, labels, value });
  }
  return out;
}

/* ---- the cluster --------------------------------------------------------------------------- */

/* Groups of raft replicas from the samples: {region: {replica: {role, term, ...}}}. */
function clusterFromMetrics(samples) {
  const groups = {};
  const rep = (s) => {
    const g = (groups[s.labels.region] ||= {});
    return (g[s.labels.replica] ||= { replica: Number(s.labels.replica), role: "unreachable" });
  };
  const fields = {
    laurel_replica_up: "up",
    laurel_raft_term: "term",
    laurel_raft_commit_index: "commit",
    laurel_raft_applied_index: "applied",
    laurel_replica_writable: "writable",
  };
  for (const s of samples) {
    if (s.labels.region === undefined || s.labels.replica === undefined) continue;
    if (s.name === "laurel_raft_role" && s.value === 1) rep(s).role = s.labels.role;
    else if (fields[s.name]) rep(s)[fields[s.name]] = s.value;
  }
  return groups;
}

async function fetchAdminCluster() {
  if (!state.adminKey) return null;
  try {
    const r = await fetch("/v1/cluster", { headers: { Authorization: "Bearer " + state.adminKey } });
    if (!r.ok) {
      $("admin-state").textContent = "admin key refused (" + r.status + ")";
      return null;
    }
    $("admin-state").textContent = "admin key in use (this page's memory only)";
    return await r.json();
  } catch (e) {
    return null;
  }
}

/* The /v1/cluster replica of @group/@replica, when the admin key gave one. */
function adminReplica(admin, group, replica) {
  if (!admin) return null;
  const g = group === "meta" ? admin.meta : (admin.regions || []).find((x) => x.id === group);
  return g && g.replicas ? g.replicas[replica - 1] || null : null;
}

function renderCluster(groups, admin) {
  const box = $("cluster");
  const names = Object.keys(groups).sort((a, b) => (a === "meta") - (b === "meta") || a.localeCompare(b));
  state.regions = names.filter((n) => n !== "meta");
  const frag = document.createDocumentFragment();
  for (const name of names) {
    const reps = Object.values(groups[name]).sort((a, b) => a.replica - b.replica);
    /* The leader of the highest term, as /v1/cluster chooses it. */
    let leader = null;
    for (const r of reps) {
      if (r.role === "leader" && (!leader || r.term > leader.term)) leader = r;
    }
    const healthy = (r) => r.up === 1 && leader !== null && (r.role === "leader" || r.role === "follower");
    const nOk = reps.filter(healthy).length;
    const quorum = nOk * 2 > reps.length;
    const status = leader === null ? ["bad", "no leader"] : nOk === reps.length ? ["ok", "healthy"]
      : quorum ? ["warn", "degraded"] : ["bad", "no quorum"];
    const head = el("h3", {},
      el("span", { class: "name" }, name === "meta" ? "meta (global state)" : "region " + name),
      el("span", { class: "leader" }, leader ? "leader: replica " + leader.replica : "leader: none"),
      el("span", { class: "term muted" }, leader ? "term " + leader.term : ""),
      el("span", { class: "badge " + status[0] }, status[1]));
    const tbody = el("tbody");
    /* Lag as `laurel ctl cluster` counts it: behind the group's most advanced state machine.
     * Not commit - applied: entries that change nothing (barriers, the meta clock) move commit
     * but not applied, so that difference is never 0 on a healthy group. */
    const top = Math.max(...reps.map((r) => (r.applied === undefined ? -Infinity : r.applied)));
    for (const r of reps) {
      const a = adminReplica(admin, name, r.replica);
      const lag = r.applied !== undefined && top > -Infinity ? top - r.applied : "";
      tbody.append(el("tr", { dataset: { replica: String(r.replica), role: r.role } },
        el("td", {}, String(r.replica)),
        el("td", {}, a ? a.address : "—"),
        el("td", { class: "role-" + r.role }, r.role),
        el("td", { class: "num" }, r.term ?? "—"),
        el("td", { class: "num" }, r.commit ?? "—"),
        el("td", { class: "num" }, r.applied ?? "—"),
        el("td", { class: "num" }, lag),
        el("td", {}, el("span", { class: "badge " + (healthy(r) ? "ok" : "bad") }, healthy(r) ? "healthy" : "unhealthy"))));
    }
    const table = el("table", {},
      el("thead", {}, el("tr", {}, ...["replica", "address", "role", "term", "commit", "applied", "lag", "health"]
        .map((h) => el("th", {}, h)))), tbody);
    frag.append(el("div", { class: "group", dataset: { region: name, leader: leader ? String(leader.replica) : "" } }, head, table));
  }
  box.replaceChildren(frag);
  fillScopes();
}

/* ---- the request charts ----------------------------------------------------------------------- */

/* Sums over the API's routes (/v1/): requests, errors and the latency histogram. */
function requestTotals(samples) {
  const t = { req: 0, err: 0, sum: 0, count: 0, buckets: new Map() };
  for (const s of samples) {
    const route = s.labels.route || "";
    if (!/^[A-Z]+ \/v1\//.test(route)) continue;
    if (s.name === "laurel_http_requests_total") {
      t.req += s.value;
      if (s.labels.code === "4xx" || s.labels.code === "5xx") t.err += s.value;
    } else if (s.name === "laurel_http_request_duration_seconds_bucket") {
      const le = s.labels.le === "+Inf" ? Infinity : parseFloat(s.labels.le);
      t.buckets.set(le, (t.buckets.get(le) || 0) + s.value);
    } else if (s.name === "laurel_http_request_duration_seconds_sum") {
      t.sum += s.value;
    } else if (s.name === "laurel_http_request_duration_seconds_count") {
      t.count += s.value;
    }
  }
  return t;
}

/* The @q quantile (0..1) in seconds of the cumulative buckets' increase between two samples,
 * interpolated inside its bucket as Prometheus' histogram_quantile does; null without data. */
function quantile(q, now, prev) {
  const les = [...now.buckets.keys()].sort((a, b) => a - b);
  const cum = les.map((le) => now.buckets.get(le) - (prev.buckets.get(le) || 0));
  const total = cum.length ? cum[cum.length - 1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < les.length; i++) {
    if (cum[i] >= rank) {
      if (les[i] === Infinity) return i > 0 ? les[i - 1] : null;
      const lo = i > 0 ? les[i - 1] : 0;
      const below = i > 0 ? cum[i - 1] : 0;
      const inb = cum[i] - below;
      return lo + (les[i] - lo) * (inb > 0 ? (rank - below) / inb : 1);
    }
  }
  return null;
}

function pushPoint(key, v) {
  const a = state.series[key];
  a.push(v);
  if (a.length > CHART_POINTS) a.shift();
}

function recordRates(totals, t) {
  const prev = state.prev;
  state.prev = { totals, t };
  if (!prev) return;
  const dt = (t - prev.t) / 1000;
  if (dt <= 0) return;
  const p = prev.totals;
  /* A counter that went down: the router restarted; start the rates again. */
  if (totals.req < p.req) return;
  pushPoint("t", t);
  pushPoint("rate", (totals.req - p.req) / dt);
  pushPoint("errors", (totals.err - p.err) / dt);
  const q50 = quantile(0.5, totals, p);
  const q99 = quantile(0.99, totals, p);
  pushPoint("p50", q50 === null ? null : q50 * 1000);
  pushPoint("p99", q99 === null ? null : q99 * 1000);
}

/* Lines of @lines ([{label, color, values}]) on @canvas, with a y axis from 0 to a round max. */
function drawChart(canvas, lines, unit) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
  if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 48, right = 8, top = 18, bottom = 18;
  let max = 0;
  for (const l of lines) for (const v of l.values) if (v !== null && v > max) max = v;
  const step = niceStep(max > 0 ? max / 4 : 1);
  const ymax = Math.max(step * 4, step * Math.ceil(max / step));
  g.font = "11px sans-serif";
  g.strokeStyle = "#dde1e8";
  g.fillStyle = "#6b7385";
  g.lineWidth = 1;
  for (let y = 0; y <= ymax + 1e-9; y += step) {
    const py = top + (h - top - bottom) * (1 - y / ymax);
    g.beginPath();
    g.moveTo(left, py);
    g.lineTo(w - right, py);
    g.stroke();
    g.fillText(fmtNum(y) + unit, 2, py + 4);
  }
  g.fillText("last " + Math.round((CHART_POINTS * POLL_MS) / 60000) + " min", left, h - 4);
  const span = CHART_POINTS - 1;
  let lx = left;
  for (const l of lines) {
    const n = l.values.length;
    g.strokeStyle = l.color;
    g.lineWidth = 1.6;
    g.beginPath();
    let pen = false;
    l.values.forEach((v, i) => {
      const px = left + ((w - left - right) * (span - (n - 1 - i))) / span;
      if (v === null) {
        pen = false;
        return;
      }
      const py = top + (h - top - bottom) * (1 - v / ymax);
      if (pen) g.lineTo(px, py);
      else g.moveTo(px, py);
      pen = true;
    });
    g.stroke();
    const last = [...l.values].reverse().find((v) => v !== null);
    const label = l.label + (last === undefined ? "" : " " + fmtNum(last) + unit);
    g.fillStyle = l.color;
    g.fillText(label, lx, 12);
    lx += g.measureText(label).width + 16;
  }
}

function niceStep(x) {
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function fmtNum(v) {
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k";
  if (v >= 10 || v === 0) return v.toFixed(0);
  return v.toFixed(v >= 1 ? 1 : 2);
}

function renderCharts() {
  const s = state.series;
  drawChart($("chart-rate"), [
    { label: "all", color: "#2f6fdf", values: s.rate },
    { label: "errors", color: "#c0392b", values: s.errors },
  ], "");
  drawChart($("chart-latency"), [
    { label: "p50", color: "#1f8a4c", values: s.p50 },
    { label: "p99", color: "#b7791f", values: s.p99 },
  ], "");
}

/* ---- the poll ------------------------------------------------------------------------------ */

async function poll() {
  try {
    const t = performance.now();
    const [m, admin, ready] = await Promise.all([
      fetch("/metrics").then((r) => (r.ok ? r.text() : Promise.reject(new Error("/metrics " + r.status)))),
      fetchAdminCluster(),
      fetch("/readyz").then((r) => r.ok, () => false),
    ]);
    const samples = promParse(m);
    renderCluster(clusterFromMetrics(samples), admin);
    recordRates(requestTotals(samples), t);
    renderCharts();
    $("ready").textContent = ready ? "ready" : "not ready";
    $("ready").className = "badge " + (ready ? "ok" : "bad");
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("ready").textContent = "unreachable";
    $("ready").className = "badge bad";
  }
  setTimeout(poll, POLL_MS);
}

/* ---- boards -------------------------------------------------------------------------------- */

function fillScopes() {
  const sel = $("board-scope");
  const want = ["global", ...state.regions.map((r) => "region:" + r), "guild:"];
  const have = [...sel.options].map((o) => o.value);
  if (want.join() === have.join()) return;
  const cur = sel.value || "global";
  sel.replaceChildren(...want.map((v) => el("option", { value: v }, v === "guild:" ? "guild…" : v)));
  sel.value = want.includes(cur) ? cur : "global";
}

function scopeParam() {
  const s = $("board-scope").value;
  return s === "guild:" ? "guild:" + $("board-guild").value.trim() : s;
}

async function api(path) {
  const r = await fetch(path);
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    const msg = body && body.error ? body.error.code + ": " + body.error.message : "HTTP " + r.status;
    throw new Error(msg);
  }
  return body;
}

/* The board's settings: its windows fill the window select. */
async function loadBoard(id) {
  const b = await api("/v1/boards/" + encodeURIComponent(id));
  const windows = [...(b.windows || ["alltime"])];
  if (b.reset_period_s && !windows.includes("cycle")) windows.push("cycle");
  const sel = $("board-window");
  const cur = sel.value;
  sel.replaceChildren(...windows.map((w) => el("option", { value: w }, w)));
  if (windows.includes(cur)) sel.value = cur;
  $("board-info").textContent = "order " + b.order + ", operator " + b.operator +
    (b.reset_period_s ? ", resets every " + b.reset_period_s + " s" : "");
  state.board.id = id;
}

function entryRow(e, me) {
  return el("tr", { class: e.player_id === me ? "me" : "", dataset: { player: e.player_id } },
    el("td", { class: "num" }, e.rank), el("td", {}, e.player_id), el("td", {}, e.name),
    el("td", {}, e.region), el("td", { class: "num" }, e.score), el("td", { class: "num" }, e.subscore),
    el("td", { class: "muted" }, e.updated_at));
}

function boardQuery(extra) {
  const p = new URLSearchParams({ scope: scopeParam(), window: $("board-window").value || "alltime" });
  const period = $("board-period").value.trim();
  if (period) p.set("period", period);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  return p.toString();
}

async function showTop(cursor) {
  const id = $("board-id").value.trim();
  const tbody = $("board-top").tBodies[0];
  try {
    if (id !== state.board.id) await loadBoard(id);
    const extra = { limit: $("board-limit").value || "10" };
    if (cursor) extra.cursor = cursor;
    const page = await api("/v1/boards/" + encodeURIComponent(id) + "/top?" + boardQuery(extra));
    tbody.replaceChildren(...page.entries.map((e) => entryRow(e, $("rank-player").value.trim())));
    if (page.entries.length === 0) tbody.append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "no entries")));
    state.board.cursor = page.next_cursor;
    state.board.shown = { scope: page.scope, window: page.window, first: !cursor };
    $("board-next").disabled = !page.next_cursor;
    $("board-top").dataset.loaded = id + " " + page.scope + " " + page.window;
    suggestTopics(id);
  } catch (e) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: "7", class: "error" }, e.message)));
    $("board-next").disabled = true;
  }
}

async function showRank() {
  const id = $("board-id").value.trim();
  const pid = $("rank-player").value.trim();
  const info = $("rank-info");
  const tbody = $("rank-around-table").tBodies[0];
  try {
    if (id !== state.board.id) await loadBoard(id);
    const r = await api("/v1/boards/" + encodeURIComponent(id) + "/players/" + encodeURIComponent(pid) +
      "?" + boardQuery({ around: $("rank-around").value || "0" }));
    info.replaceChildren(el("strong", {}, pid), " rank " + r.rank + " of " + r.total + ", score " + r.score +
      " (subscore " + r.subscore + "), percentile " + r.percentile);
    tbody.replaceChildren(...(r.around || []).map((e) => entryRow(e, pid)));
  } catch (e) {
    info.replaceChildren(el("span", { class: "error" }, e.message));
    tbody.replaceChildren();
  }
}

/* ---- the live feed ------------------------------------------------------------------------- */

const EVENT_TYPES = ["score.updated", "leaderboard.changed", "achievement.unlocked", "reward.granted",
  "player.updated", "cycle.closed", "error"];

/* The subscribed topic an event arrived by (events do not name it; API.md says which carries
 * what). */
function eventTopic(ev) {
  if (ev.type === "leaderboard.changed" || ev.type === "cycle.closed") {
    return ev.scope && ev.scope.startsWith("region:") ? "board:" + ev.board_id + ":" + ev.scope : "board:" + ev.board_id;
  }
  if (ev.player_id) return "player:" + ev.player_id;
  return "";
}

function eventSummary(ev) {
  switch (ev.type) {
    case "score.updated":
      return ev.board_id + " " + ev.player_id + " score " + ev.score + " (" + ev.region + " #" + ev.index + ")";
    case "leaderboard.changed":
      return ev.board_id + " " + ev.scope + ": " + (ev.top || []).slice(0, 5).map((e) => e.rank + "." + e.player_id + "=" + e.score).join(" ");
    case "achievement.unlocked":
      return ev.player_id + " " + ev.game_id + "/" + ev.achievement_id + " +" + ev.points;
    case "reward.granted":
      return ev.player_id + " " + ev.board_id + " cycle " + ev.cycle + " rank " + ev.rank + ": " + ev.reward;
    case "error":
      return ev.error ? ev.error.code + ": " + ev.error.message : "";
    default:
      return JSON.stringify(ev);
  }
}

function feedVisible(li) {
  return !state.hiddenTypes.has(li.dataset.type) && !state.hiddenTopics.has(li.dataset.topic);
}

function feedAdd(ev) {
  if ($("feed-pause").checked) return;
  if (typeof ev.index === "number" && ev.region && ev.type !== "leaderboard.changed") {
    state.lastIndex[ev.region] = Math.max(state.lastIndex[ev.region] || 0, ev.index);
  }
  /* The first page shown of a board whose top changed is read again: the event's top is the
   * alltime window's first 10 only, the table may show another window or limit. */
  const shown = state.board.shown;
  if (ev.type === "leaderboard.changed" && ev.board_id === state.board.id && shown && shown.first &&
      shown.scope === ev.scope) {
    showTop(null);
  }
  const li = el("li", { dataset: { type: ev.type, topic: eventTopic(ev) }, title: JSON.stringify(ev) },
    el("span", { class: "t" }, new Date().toLocaleTimeString()), el("span", { class: "type" }, ev.type),
    eventSummary(ev));
  li.hidden = !feedVisible(li);
  const feed = $("feed");
  feed.prepend(li);
  while (feed.children.length > FEED_MAX) feed.lastChild.remove();
}

function renderFilters() {
  const chips = (box, items, hidden) => box.replaceChildren(...items.map((it) => {
    const cb = el("input", { type: "checkbox" });
    cb.checked = !hidden.has(it);
    cb.addEventListener("change", () => {
      if (cb.checked) hidden.delete(it);
      else hidden.add(it);
      for (const li of $("feed").children) li.hidden = !feedVisible(li);
    });
    return el("label", { class: "chip" }, cb, " " + it);
  }));
  chips($("feed-topic-filter"), state.topics, state.hiddenTopics);
  chips($("feed-type-filter"), EVENT_TYPES, state.hiddenTypes);
}

function wsSend(msg) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}

/* (Re)subscribe to the topics typed in; player topics resume after the last index seen. */
function subscribe() {
  const want = $("feed-topics").value.split(/[\s,]+/).filter(Boolean);
  const gone = state.topics.filter((t) => !want.includes(t));
  if (gone.length) wsSend({ op: "unsubscribe", topics: gone });
  state.topics = want;
  renderFilters();
  if (want.length) wsSend({ op: "subscribe", topics: want });
}

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws";
  const ws = new WebSocket(url);
  state.ws = ws;
  $("feed-state").textContent = "connecting";
  $("feed-state").className = "badge warn";
  ws.onopen = () => {
    state.wsBackoffMs = 500;
    $("feed-state").textContent = "live";
    $("feed-state").className = "badge ok";
    if (state.topics.length) {
      const msg = { op: "subscribe", topics: state.topics };
      if (Object.keys(state.lastIndex).length) msg.resume = { ...state.lastIndex };
      ws.send(JSON.stringify(msg));
    }
  };
  ws.onmessage = (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch (e) {
      return;
    }
    if (ev.type === "subscribed" || ev.type === "unsubscribed" || ev.type === "pong") {
      $("feed-state").title = ev.type + " " + (ev.topics || []).join(" ");
      return;
    }
    feedAdd(ev);
  };
  ws.onclose = () => {
    $("feed-state").textContent = "reconnecting";
    $("feed-state").className = "badge bad";
    setTimeout(connect, state.wsBackoffMs);
    state.wsBackoffMs = Math.min(state.wsBackoffMs * 2, 10000);
  };
}

function suggestTopics(board) {
  if ($("feed-topics").value.trim() === "") {
    $("feed-topics").value = "board:" + board;
    subscribe();
  }
}

/* ---- wiring -------------------------------------------------------------------------------- */

/* #board=arena&player=alice&topics=board:arena,player:alice opens those at once (a link an
 * operator can share; it never carries a key). */
function fromHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.get("topics")) {
    $("feed-topics").value = p.get("topics");
    subscribe();
  }
  if (p.get("player")) $("rank-player").value = p.get("player");
  if (p.get("board")) {
    $("board-id").value = p.get("board");
    showTop(null).then(() => (p.get("player") ? showRank() : null));
  }
}

function init() {
  $("admin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.adminKey = $("admin-key").value || null;
    $("admin-key").value = "";
    $("admin-state").textContent = state.adminKey ? "admin key set (this page's memory only)" : "not set: reads need none";
  });
  $("admin-forget").addEventListener("click", () => {
    state.adminKey = null;
    $("admin-state").textContent = "not set: reads need none";
  });
  $("board-form").addEventListener("submit", (e) => {
    e.preventDefault();
    showTop(null);
  });
  $("board-scope").addEventListener("change", () => ($("guild-label").hidden = $("board-scope").value !== "guild:"));
  $("board-first").addEventListener("click", () => showTop(null));
  $("board-next").addEventListener("click", () => showTop(state.board.cursor));
  $("rank-form").addEventListener("submit", (e) => {
    e.preventDefault();
    showRank();
  });
  $("feed-form").addEventListener("submit", (e) => {
    e.preventDefault();
    subscribe();
  });
  $("feed-clear").addEventListener("click", () => $("feed").replaceChildren());
  fillScopes();
  $("board-window").replaceChildren(el("option", { value: "alltime" }, "alltime"));
  renderFilters();
  connect();
  poll();
  fromHash();
}

init();
