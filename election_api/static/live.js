// The election-night page (GET /live): follows GET /live/stream (Server-Sent Events) and redraws the map, the
// national figures and the lists from the latest records. No library, nothing loaded from elsewhere.
//
// Events: "reset" (forget every record: the whole picture follows), "national" and "state" (a record, as in the
// key-value bucket), "delete" ({key, state_po}), "status" ({available, detail}). A 503 answer (no data yet, NATS
// down) closes the EventSource: the page then asks /live/national why, shows it, and connects again.
(() => {
  "use strict";

  const STREAM_URL = "/live/stream";
  const RETRY_MS = 3000;
  // ColorBrewer RdBu halves, from an even race (t = 0) to a certain one (t = 1): t = (p_leader - 0.5) / 0.5.
  const RAMPS = {
    D: ["#f7f7f7", "#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061"],
    R: ["#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"],
  };
  const PARTY = { D: "Democrat", R: "Republican" };

  const model = { national: null, states: new Map(), connected: false, detail: "Connecting…" };
  const $ = (id) => document.getElementById(id);
  const shapes = new Map();
  let renderTimer = 0;

  // --- Formatting -------------------------------------------------------------------------------------------

  const percent = (p) => {
    const value = 100 * p;
    if (value > 99 && value < 100) return value >= 99.95 ? ">99.9%" : `${value.toFixed(1)}%`;
    if (value > 0 && value < 1) return value <= 0.05 ? "<0.1%" : `${value.toFixed(1)}%`;
    return `${Math.round(value)}%`;
  };
  const number = (n) => Math.round(n).toLocaleString("en-US");
  const compact = (n) =>
    n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : `${Math.round(n)}`;
  const timeOf = (iso) => {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString("en-US", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  };

  function hexToRgb(hex) {
    const value = parseInt(hex.slice(1), 16);
    return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
  }

  function colour(pDem) {
    const party = pDem >= 0.5 ? "D" : "R";
    const t = Math.min(1, Math.max(0, (Math.max(pDem, 1 - pDem) - 0.5) / 0.5));
    const stops = RAMPS[party];
    const x = t * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(x));
    const a = hexToRgb(stops[i]);
    const b = hexToRgb(stops[i + 1]);
    const f = x - i;
    const mix = a.map((v, k) => Math.round(v + (b[k] - v) * f));
    return `rgb(${mix[0]}, ${mix[1]}, ${mix[2]})`;
  }

  // --- Drawing ------------------------------------------------------------------------------------------------

  function schedule() {
    if (!renderTimer) renderTimer = setTimeout(() => { renderTimer = 0; render(); }, 40);
  }

  function render() {
    renderStatus();
    renderNational();
    renderStates();
    renderLists();
  }

  function renderStatus() {
    const status = $("status");
    const notice = $("notice");
    const hasData = model.national !== null || model.states.size > 0;
    let kind;
    let text;
    if (model.connected) {
      kind = "live";
      text = "Live";
    } else if (hasData) {
      kind = "down";
      text = "Reconnecting…";
    } else {
      kind = "waiting";
      text = "Waiting for data";
    }
    status.className = `status ${kind}`;
    $("status-text").textContent = text;
    if (!model.connected && model.detail) {
      notice.hidden = false;
      notice.textContent = hasData ? `Showing the last figures received. ${model.detail}` : model.detail;
    } else {
      notice.hidden = true;
    }
  }

  function renderNational() {
    const n = model.national;
    const pDem = n ? n.p_dem : null;
    $("national-p-dem").textContent = n ? percent(pDem) : "–";
    $("national-p-rep").textContent = n ? percent(1 - pDem) : "–";
    $("chance-dem").style.width = n ? `${100 * pDem}%` : "0";
    $("chance-rep").style.width = n ? `${100 * (1 - pDem)}%` : "0";
    $("year").textContent = n ? n.year : "";
    const dem = n ? n.dem_electoral_votes_called : 0;
    const rep = n ? n.rep_electoral_votes_called : 0;
    $("ev-dem-called").textContent = dem;
    $("ev-rep-called").textContent = rep;
    $("ev-bar-dem").style.width = `${(100 * dem) / 538}%`;
    $("ev-bar-rep").style.width = `${(100 * rep) / 538}%`;
    const interval = $("ev-interval");
    const median = $("ev-median");
    if (n) {
      const low = n.dem_electoral_votes_low;
      const high = n.dem_electoral_votes_high;
      interval.style.display = "block";
      interval.style.left = `${(100 * low) / 538}%`;
      interval.style.width = `${(100 * Math.max(0, high - low)) / 538}%`;
      median.style.display = "block";
      median.style.left = `${(100 * n.dem_electoral_votes_median) / 538}%`;
      $("ev-text").innerHTML =
        `Democratic electoral votes: median <b>${n.dem_electoral_votes_median}</b>, ` +
        `80% interval <b>${low}–${high}</b> (Republican: ${538 - n.dem_electoral_votes_median}, ` +
        `${538 - high}–${538 - low})`;
      const share = n.expected_votes > 0 ? n.counted_votes / n.expected_votes : 0;
      $("counted").textContent =
        `${percent(share)} of the expected vote counted (${compact(n.counted_votes)} of ${compact(n.expected_votes)})`;
      $("updated").textContent = `updated ${timeOf(n.updated_at)}`;
    } else {
      interval.style.display = "none";
      median.style.display = "none";
      $("ev-text").textContent = "Democratic electoral votes: waiting for the first estimate";
      $("counted").textContent = "No votes counted yet";
      $("updated").textContent = "waiting for data";
    }
  }

  function renderStates() {
    const group = $("states");
    for (const [po, elements] of shapes) {
      const record = model.states.get(po);
      for (const element of elements) {
        const called = Boolean(record && record.call);
        if (record) {
          element.style.fill = called ? `url(#hatch-${record.call.winner})` : colour(record.p_dem);
          element.dataset.pDem = String(record.p_dem);
        } else {
          element.style.fill = "";
          delete element.dataset.pDem;
        }
        element.classList.toggle("called", called);
        element.dataset.called = called ? record.call.winner : "";
        // A called state's outline is drawn last, so its neighbours do not cover half of it.
        if (called && element.parentNode === group && group.lastElementChild !== element) group.appendChild(element);
      }
    }
  }

  function chip(record) {
    const item = document.createElement("li");
    item.textContent = record.state_po;
    const votes = document.createElement("small");
    votes.textContent = record.electoral_votes;
    item.appendChild(votes);
    item.title = `${nameOf(record.state_po)}: ${record.electoral_votes} electoral votes, called at ` +
      `${percent(record.call.counted_share)} counted`;
    return item;
  }

  function renderLists() {
    const called = { D: [], R: [] };
    const open = [];
    for (const record of model.states.values()) {
      if (record.call) called[record.call.winner === "D" ? "D" : "R"].push(record);
      else open.push(record);
    }
    for (const party of ["D", "R"]) {
      const list = $(party === "D" ? "called-dem" : "called-rep");
      const records = called[party].sort((a, b) => a.call.messages_applied - b.call.messages_applied);
      list.replaceChildren(...records.map(chip));
      if (!records.length) {
        const empty = document.createElement("li");
        empty.className = "empty";
        empty.textContent = "none yet";
        list.appendChild(empty);
      }
      const votes = records.reduce((sum, r) => sum + r.electoral_votes, 0);
      $(party === "D" ? "called-dem-ev" : "called-rep-ev").textContent = `${votes} electoral votes`;
    }
    $("called-count").textContent = called.D.length + called.R.length;
    const closest = open.sort((a, b) => Math.abs(a.p_dem - 0.5) - Math.abs(b.p_dem - 0.5)).slice(0, 8);
    const rows = closest.map((record) => {
      const row = document.createElement("li");
      row.title = nameOf(record.state_po);
      const leader = record.p_dem >= 0.5 ? "D" : "R";
      row.innerHTML = '<span class="po"></span><span class="bar"><i></i></span><span class="p"></span>';
      row.querySelector(".po").textContent = record.state_po;
      row.querySelector(".bar i").style.left = `${100 * record.p_dem}%`;
      const p = row.querySelector(".p");
      p.textContent = `${leader} ${percent(Math.max(record.p_dem, 1 - record.p_dem))}`;
      p.className = `p ${leader === "D" ? "dem" : "rep"}`;
      return row;
    });
    if (!rows.length) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = model.states.size ? "every state with an estimate is called" : "no estimates yet";
      rows.push(empty);
    }
    $("closest").replaceChildren(...rows);
  }

  // --- Tooltip ------------------------------------------------------------------------------------------------

  function nameOf(po) {
    const element = document.getElementById(`state-${po}`);
    return element ? element.dataset.name : po;
  }

  function tooltipHtml(po) {
    const record = model.states.get(po);
    const title = `<h4>${nameOf(po)}</h4>`;
    if (!record) return `${title}<div>No estimate yet</div>`;
    const rows = [
      ["Electoral votes", record.electoral_votes],
      ["Democrat carries it", percent(record.p_dem)],
      ["Expected Dem. share", `${(100 * record.expected_dem_share).toFixed(1)}% ± ${(100 * record.dem_share_sd).toFixed(1)}`],
      ["Counted Dem. share", record.counted_dem_share === null ? "–" : `${(100 * record.counted_dem_share).toFixed(1)}%`],
      ["Votes counted", `${number(record.counted_votes)} (${percent(record.expected_votes > 0 ? record.counted_votes / record.expected_votes : 0)})`],
      ["Counties reported", `${record.counties_reported} of ${record.counties}`],
    ];
    const list = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
    const call = record.call
      ? `<div class="call" style="color: var(--${record.call.winner === "D" ? "dem" : "rep"})">Called for the ` +
        `${PARTY[record.call.winner]} at ${percent(record.call.counted_share)} counted</div>`
      : "";
    return `${title}<dl>${list}</dl>${call}`;
  }

  function setUpTooltip() {
    const tooltip = $("tooltip");
    const svg = $("map");
    svg.addEventListener("mousemove", (event) => {
      const target = event.target.closest("[data-state]");
      if (!target) { tooltip.hidden = true; return; }
      tooltip.innerHTML = tooltipHtml(target.dataset.state);
      tooltip.hidden = false;
      const x = Math.min(event.clientX + 14, window.innerWidth - tooltip.offsetWidth - 8);
      const y = Math.min(event.clientY + 14, window.innerHeight - tooltip.offsetHeight - 8);
      tooltip.style.left = `${x}px`;
      tooltip.style.top = `${y}px`;
    });
    svg.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  }

  // --- The stream ---------------------------------------------------------------------------------------------

  async function explainUnavailable() {
    try {
      const response = await fetch("/live/national", { headers: { Accept: "application/json" } });
      if (!response.ok) {
        const body = await response.json();
        model.detail = body.detail || `HTTP ${response.status}`;
      }
    } catch (error) {
      model.detail = "The API does not answer.";
    }
    schedule();
  }

  function connect() {
    const source = new EventSource(STREAM_URL);
    source.addEventListener("open", () => { model.connected = true; schedule(); });
    source.addEventListener("reset", () => { model.national = null; model.states.clear(); schedule(); });
    source.addEventListener("national", (event) => { model.national = JSON.parse(event.data); schedule(); });
    source.addEventListener("state", (event) => {
      const record = JSON.parse(event.data);
      model.states.set(record.state_po, record);
      schedule();
    });
    source.addEventListener("delete", (event) => {
      const { key, state_po: po } = JSON.parse(event.data);
      if (key === "national") model.national = null;
      else if (po) model.states.delete(po);
      schedule();
    });
    source.addEventListener("status", (event) => {
      const status = JSON.parse(event.data);
      model.connected = status.available;
      model.detail = status.detail || "";
      schedule();
    });
    source.addEventListener("error", () => {
      model.connected = false;
      if (source.readyState === EventSource.CLOSED) {
        // Refused (503: no data yet, or NATS unreachable): find out why, then try again.
        explainUnavailable();
        setTimeout(connect, RETRY_MS);
      } else {
        model.detail = "Lost the connection to the API; reconnecting.";
      }
      schedule();
    });
  }

  function start() {
    for (const element of document.querySelectorAll("#map [data-state]")) {
      const po = element.dataset.state;
      if (!shapes.has(po)) shapes.set(po, []);
      shapes.get(po).push(element);
    }
    setUpTooltip();
    render();
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
