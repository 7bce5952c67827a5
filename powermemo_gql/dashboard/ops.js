// The operator panels: the user list, the selected user's buffer, flushes, events and LLM
// usage. Everything reaches the page through textContent / attributes: never innerHTML.

const USERS_PAGE = 8;        // users per page of the list
const FLUSHES_SHOWN = 20;    // recent flushes listed and charted
const EVENTS_SHOWN = 20;     // newest events in the timeline
const REFRESH_DELAY_MS = 150;  // changes arriving together cause one reload
// A flush's embedding tokens are counted after it finished, as its rows are indexed: after a
// flush the panels are read again every SETTLE_MS until its count stops moving (or
// SETTLE_READS times, e.g. with embeddings off).
const SETTLE_MS = 2000;
const SETTLE_READS = 5;
const SVG = "http://www.w3.org/2000/svg";

const USERS_QUERY = `query DashboardUsers($first: Int!, $after: String, $search: String) {
  users(first: $first, after: $after, search: $search) {
    nodes { id userId createdAt }
    pageInfo { hasNextPage endCursor }
  }
}`;
const USER_OPS_QUERY = `query DashboardUserOps($userId: ID!, $flushes: Int!, $events: Int!) {
  user(userId: $userId) {
    id
    buffer {
      status totalTokens idleTokens failedCount
      items { blobId tokenCount status error createdAt }
    }
    flushes(last: $flushes) {
      id trigger status itemCount llmCalls inputTokens outputTokens embeddingTexts
      embeddingTokens error startedAt finishedAt
    }
    events(first: $events) { nodes { id summary happenedFrom tags { tag value } } }
  }
  llmUsage { flushes llmCalls inputTokens outputTokens embeddingTexts embeddingTokens }
}`;
const RETRY_MUTATION = `mutation DashboardRetry($userId: ID!) {
  retryFailedBuffer(input: {userId: $userId, wait: true}) {
    __typename
    ... on RetryFailedBufferPayload { retriedItems outcome flush { status error } }
    ... on NotFound { message }
  }
}`;
// Feed kinds after which the buffer, flushes or events have changed.
const REFRESH_KINDS = new Set(["BUFFER_FLUSHED", "FLUSH_FAILED", "EVENT_UPDATED",
                               "EVENT_DELETED"]);

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text != null) element.textContent = String(text);
  return element;
}

// Ids are global (base64 of "Type:raw"): the raw id's start tells objects apart at a glance.
export function shortId(id) {
  try {
    const decoded = atob(id);
    const colon = decoded.indexOf(":");
    return (colon < 0 ? id : decoded.slice(colon + 1)).slice(0, 8);
  } catch {
    return id.slice(0, 8);
  }
}

function shortTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

function timeCell(iso) {
  const time = el("time", "", shortTime(iso));
  time.dateTime = iso || "";
  time.title = iso || "";
  return time;
}

function row(cells, dataset) {
  const tr = document.createElement("tr");
  Object.assign(tr.dataset, dataset);
  for (const [className, content] of cells) {
    const td = el("td", className);
    if (content instanceof Node) td.append(content);
    else td.textContent = content == null ? "" : String(content);
    tr.append(td);
  }
  return tr;
}

function showList(container, empty, items, note) {
  container.replaceChildren(...items);
  empty.textContent = note;
  empty.hidden = items.length > 0;
}

// --- the usage chart ---------------------------------------------------------------------
function svg(tag, attributes) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  return element;
}

// The chart's series: what each flush spent, placed by when it started (oldest left).
const SERIES = [
  { name: "llmTokens", label: "LLM tokens (input + output)",
    of: (f) => f.inputTokens + f.outputTokens,
    detail: (f) => `${f.inputTokens} in / ${f.outputTokens} out` },
  { name: "embeddingTokens", label: "embedding tokens",
    of: (f) => f.embeddingTokens,
    detail: (f) => `${f.embeddingTexts} texts embedded` },
];

function usageLegend() {
  return SERIES.map((series) => {
    const li = el("li");
    li.dataset.series = series.name;
    li.append(el("span", "swatch", "●"), " ", el("span", "label", series.label));
    return li;
  });
}

function usageChart(flushes) {
  const width = 560, height = 190, left = 48, right = 12, top = 12, bottom = 38;
  const points = flushes.map((f) => ({ flush: f, t: new Date(f.startedAt).getTime() }))
    .filter((p) => !Number.isNaN(p.t)).sort((a, b) => a.t - b.t);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
                             "aria-label": "LLM and embedding tokens per flush over time" });
  chart.id = "usage-svg";
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const peak = Math.max(1, ...points.flatMap((p) => SERIES.map((s) => s.of(p.flush))));
  const x = (t) => (t1 === t0 ? (left + width - right) / 2
    : left + ((t - t0) / (t1 - t0)) * (width - left - right));
  const y = (tokens) => height - bottom - (tokens / peak) * (height - top - bottom);
  chart.append(svg("line", { x1: left, y1: y(0), x2: width - right, y2: y(0), class: "axis" }),
               svg("line", { x1: left, y1: top, x2: left, y2: y(0), class: "axis" }));
  const label = (text, attributes) => {
    const node = svg("text", attributes);
    node.textContent = text;
    chart.append(node);
    return node;
  };
  label(String(peak), { x: left - 6, y: top + 4, "text-anchor": "end" });
  label("0", { x: left - 6, y: y(0) + 4, "text-anchor": "end" });
  label(shortTime(points[0].flush.startedAt), { x: left, y: height - 22 });
  if (t1 !== t0) {
    label(shortTime(points[points.length - 1].flush.startedAt),
          { x: width - right, y: height - 22, "text-anchor": "end" });
  }
  label("flush started", { x: (left + width - right) / 2, y: height - 6, "text-anchor": "middle",
                           class: "axis-title" });
  for (const series of SERIES) {
    const line = points.map((p) => `${x(p.t).toFixed(1)},${y(series.of(p.flush)).toFixed(1)}`);
    chart.append(svg("polyline", { points: line.join(" "), class: `series ${series.name}` }));
    for (const p of points) {
      const tokens = series.of(p.flush);
      const dot = svg("circle", { cx: x(p.t).toFixed(1), cy: y(tokens).toFixed(1),
                                  r: 4, class: `point ${series.name}` });
      dot.dataset.flushId = p.flush.id;
      dot.dataset.series = series.name;
      dot.dataset.tokens = String(tokens);
      const title = svg("title", {});
      title.textContent = `${shortTime(p.flush.startedAt)}: ${tokens} ${series.label} (${
        series.detail(p.flush)}; ${p.flush.status.toLowerCase()})`;
      dot.append(title);
      chart.append(dot);
    }
  }
  return chart;
}

// --- the panels --------------------------------------------------------------------------
export function createOperator({ graphql, selectUser, currentUser }) {
  const els = {
    usersForm: $("users-form"), usersSearch: $("users-search"),
    usersList: $("users-list"), usersEmpty: $("users-empty"),
    usersPrev: $("users-prev"), usersNext: $("users-next"), usersPage: $("users-page"),
    bufferStatus: $("buffer-status"), bufferRows: $("buffer-rows"),
    bufferEmpty: $("buffer-empty"), retry: $("retry-button"), refresh: $("ops-refresh"), retryResult: $("retry-result"),
    flushRows: $("flush-rows"), flushesEmpty: $("flushes-empty"),
    events: $("events"), eventsEmpty: $("events-empty"), eventsCount: $("events-count"),
    chart: $("usage-chart"), usageEmpty: $("usage-empty"), usageTotals: $("usage-totals"),
    legend: $("usage-legend"),
  };
  let afters = [null];       // the `after` cursor of each page seen; the last is shown
  let nextCursor = null;
  let filter = "";
  let usersSeq = 0;
  let opsSeq = 0;
  let refreshTimer = null;
  let settleTimer = null;
  let settleReads = 0;       // reads left while a flush's embedding count may still move
  let settleFigure = null;   // that count at the previous read

  // --- the user list -------------------------------------------------------------------
  async function loadUsers() {
    const mySeq = ++usersSeq;
    const after = afters[afters.length - 1];
    let page;
    try {
      const data = await graphql(USERS_QUERY, { first: USERS_PAGE, after, search: filter || null });
      page = data.users;
    } catch (error) {
      if (mySeq === usersSeq) showList(els.usersList, els.usersEmpty, [], `Users: ${error.message}`);
      return;
    }
    if (mySeq !== usersSeq) return;
    const items = page.nodes.map((user) => {
      const li = el("li");
      li.dataset.userId = user.userId;
      li.classList.toggle("selected", user.userId === currentUser());
      const button = el("button", "user-link", user.userId);
      button.type = "button";
      button.addEventListener("click", () => selectUser(user.userId));
      li.append(button, timeCell(user.createdAt));
      return li;
    });
    showList(els.usersList, els.usersEmpty, items, filter ? "No user matches." : "No users yet.");
    nextCursor = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    els.usersNext.disabled = nextCursor === null;
    els.usersPrev.disabled = afters.length < 2;
    els.usersPage.textContent = `page ${afters.length}`;
  }

  function enableUsers() {
    els.usersSearch.disabled = false;
    afters = [null];
    loadUsers();
  }

  els.usersForm.addEventListener("submit", (event) => {
    event.preventDefault();
    filter = els.usersSearch.value.trim();
    afters = [null];
    loadUsers();
  });
  els.usersNext.addEventListener("click", () => {
    if (nextCursor === null) return;
    afters.push(nextCursor);
    loadUsers();
  });
  els.usersPrev.addEventListener("click", () => {
    if (afters.length < 2) return;
    afters.pop();
    loadUsers();
  });

  // --- buffer, flushes, events and usage of the selected user --------------------------
  function renderBuffer(buffer) {
    els.bufferStatus.textContent = `${buffer.status.toLowerCase()} · ${buffer.idleTokens} idle / ${
      buffer.totalTokens} tokens`;
    els.bufferStatus.dataset.state = buffer.status;
    const items = buffer.items.map((item) => row([
      ["blob", shortId(item.blobId)], ["status", item.status.toLowerCase()],
      ["tokens", item.tokenCount], ["error", item.error], ["when", timeCell(item.createdAt)],
    ], { blobId: item.blobId, status: item.status }));
    showList(els.bufferRows, els.bufferEmpty, items, "The buffer is empty.");
    els.retry.hidden = buffer.failedCount === 0;
    els.retry.textContent = `Retry ${buffer.failedCount} failed item${
      buffer.failedCount === 1 ? "" : "s"}`;
  }

  function renderFlushes(flushes) {
    const items = flushes.map((flush) => row([
      ["when", timeCell(flush.startedAt)], ["trigger", flush.trigger.toLowerCase()],
      ["status", flush.status.toLowerCase()], ["items", flush.itemCount],
      ["tokens", `${flush.inputTokens} / ${flush.outputTokens}`],
      ["embedding", `${flush.embeddingTokens} (${flush.embeddingTexts})`], ["error", flush.error],
    ], { flushId: flush.id, status: flush.status }));
    showList(els.flushRows, els.flushesEmpty, items, "No flushes yet.");
  }

  function renderEvents(events) {
    const items = events.map((event) => {
      const li = el("li");
      li.dataset.eventId = event.id;
      const tags = event.tags.map((t) => el("span", "badge", `${t.tag}: ${t.value}`));
      li.append(timeCell(event.happenedFrom), el("span", "summary", event.summary), ...tags);
      return li;
    });
    els.eventsCount.textContent = events.length ? `${events.length} newest` : "";
    showList(els.events, els.eventsEmpty, items, "No events yet.");
  }

  function renderUsage(flushes, usage) {
    els.usageTotals.textContent = `project: ${usage.flushes} flushes · ${usage.llmCalls} LLM calls · ${
      usage.inputTokens} in / ${usage.outputTokens} out tokens · ${usage.embeddingTexts} texts embedded (${
      usage.embeddingTokens} tokens)`;
    const charted = flushes.filter((f) => f.status !== "RUNNING");
    els.chart.replaceChildren(...(charted.length ? [usageChart(charted)] : []));
    els.legend.replaceChildren(...(charted.length ? usageLegend() : []));
    els.usageEmpty.hidden = charted.length > 0;
  }

  // After a flush: read again until the newest finished flush's embedding count is above 0
  // and the same twice running.
  function settle(flushes) {
    clearTimeout(settleTimer);
    if (settleReads <= 0) return;
    const newest = flushes.find((f) => f.status === "DONE");
    const figure = newest ? `${newest.id}:${newest.embeddingTexts}` : null;
    const settled = newest && newest.embeddingTexts > 0 && figure === settleFigure;
    settleFigure = figure;
    settleReads = settled ? 0 : settleReads - 1;
    if (settleReads > 0) settleTimer = setTimeout(loadUser, SETTLE_MS);
  }

  async function loadUser() {
    const userId = currentUser();
    if (!userId) return;
    const mySeq = ++opsSeq;
    let data;
    try {
      data = await graphql(USER_OPS_QUERY, { userId, flushes: FLUSHES_SHOWN, events: EVENTS_SHOWN });
    } catch (error) {
      if (mySeq === opsSeq) els.bufferStatus.textContent = `not loaded: ${error.message}`;
      return;
    }
    if (mySeq !== opsSeq || !data.user) return;
    renderBuffer(data.user.buffer);
    renderFlushes(data.user.flushes);
    renderEvents(data.user.events.nodes);
    renderUsage(data.user.flushes, data.llmUsage);
    settle(data.user.flushes);
  }

  els.refresh.addEventListener("click", () => loadUser());

  els.retry.addEventListener("click", async () => {
    const userId = currentUser();
    els.retry.disabled = true;
    els.retryResult.textContent = "retrying…";
    try {
      const data = await graphql(RETRY_MUTATION, { userId });
      const result = data.retryFailedBuffer;
      if (result.__typename !== "RetryFailedBufferPayload") {
        els.retryResult.textContent = result.message;
      } else {
        const flush = result.flush;
        els.retryResult.textContent = `${result.retriedItems} retried: ${
          result.outcome.toLowerCase()}${flush ? `, ${flush.status.toLowerCase()}` : ""}${
          flush && flush.error ? ` (${flush.error})` : ""}`;
      }
    } catch (error) {
      els.retryResult.textContent = `retry failed: ${error.message}`;
    } finally {
      els.retry.disabled = false;
    }
    if (userId === currentUser()) loadUser();
  });

  function clearUser() {
    opsSeq += 1;
    clearTimeout(settleTimer);
    settleReads = 0;
    settleFigure = null;
    for (const container of [els.bufferRows, els.flushRows, els.events, els.chart, els.legend]) {
      container.replaceChildren();
    }
    els.retry.hidden = true;
    els.retryResult.textContent = "";
    els.bufferStatus.textContent = "";
    els.usageTotals.textContent = "";
  }

  return {
    keyKnown: enableUsers,
    userSelected() {
      clearUser();
      for (const li of els.usersList.children) {
        li.classList.toggle("selected", li.dataset.userId === currentUser());
      }
      loadUser();
    },
    // A change from the live feed: reload the panels it affects, once per burst.
    changed(change) {
      if (!REFRESH_KINDS.has(change.kind)) return;
      if (change.kind === "BUFFER_FLUSHED") {
        settleReads = SETTLE_READS;
        settleFigure = null;
      }
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(loadUser, REFRESH_DELAY_MS);
    },
    refresh: loadUser,
  };
}
