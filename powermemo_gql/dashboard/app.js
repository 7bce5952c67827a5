// The dashboard's live profile, change log and search (served beside index.html).
import { createOperator, shortId } from "./ops.js";

(() => {
  // All data reaches the page through textContent / dataset: never innerHTML.
  const CHANGE_FIELDS = `fragment DashboardChange on ProfileChange {
    cursor kind entryId topic subTopic oldValue newValue source flushId eventId error createdAt
  }`;
  const CHANGES_QUERY = `query DashboardChanges($userId: ID!, $last: Int!) {
    user(userId: $userId) { id changesCursor changes(last: $last) { nodes { ...DashboardChange } } }
  } ${CHANGE_FIELDS}`;
  const PROFILE_QUERY = `query DashboardProfile($userId: ID!) {
    user(userId: $userId) { id profile { id topic subTopic content source updatedAt } }
  }`;
  const SUBSCRIPTION = `subscription DashboardFeed($userId: ID!, $since: String) {
    profileUpdated(userId: $userId, since: $since) { ...DashboardChange }
  } ${CHANGE_FIELDS}`;

  const SEARCH_QUERY = `query DashboardSearch($userId: ID!, $query: String!) {
    user(userId: $userId) {
      search(query: $query, first: 10) {
        __typename
        ... on SearchResults {
          mode reason keywordOnlyRows
          hits { score kind entry { topic subTopic content } event { summary } fact { content } }
        }
        ... on InvalidInput { field message }
      }
    }
  }`;
  const LOG_ON_LOAD = 20;      // changes shown in the log when the page loads
  const LOG_MAX = 50;          // log items kept
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const STABLE_AFTER_MS = 5000;  // a connection up this long resets the backoff
  const ACK_TIMEOUT_MS = 10000;
  const PING_EVERY_MS = 25000;
  const PONG_TIMEOUT_MS = 10000;
  const KEY_STORAGE = "powermemo.dashboard.key";
  // Subscription errors that retrying cannot fix.
  const FATAL_CODES = new Set(["UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND",
                               "GRAPHQL_VALIDATION_FAILED"]);
  const KIND_LABELS = {
    ENTRY_ADDED: "added", ENTRY_UPDATED: "updated", ENTRY_DELETED: "deleted",
    BUFFER_FLUSHED: "buffer flushed", FLUSH_FAILED: "flush failed",
  };

  const $ = (id) => document.getElementById(id);
  const els = {
    form: $("connect-form"), key: $("key-input"), user: $("user-input"),
    status: $("status"), message: $("message"), titleUser: $("title-user"),
    rows: $("profile-rows"), profileEmpty: $("profile-empty"), count: $("entry-count"),
    log: $("log"), logEmpty: $("log-empty"), logCount: $("log-count"),
    searchForm: $("search-form"), searchInput: $("search-input"),
    searchButton: $("search-button"), searchResults: $("search-results"),
    searchEmpty: $("search-empty"), searchMode: $("search-mode"),
  };

  class FatalError extends Error {}

  // One "run" per (key, user); bumping `run` orphans the previous run's sockets and timers.
  let run = 0;
  let key = "";
  let userId = "";
  let lastCursor = null;     // cursor of the newest change applied
  let haveSnapshot = false;
  let connections = 0;       // subscriptions acknowledged in this run
  let socket = null;
  let attempt = 0;
  let reconnectTimer = null;
  let socketTimers = [];
  const rows = new Map();    // entry id -> <tr>

  // --- status and messages -------------------------------------------------------------
  function setStatus(state, text) {
    els.status.dataset.state = state;
    els.status.textContent = text;
    els.status.title = text;
  }

  function showMessage(text) {
    els.message.textContent = text || "";
    els.message.hidden = !text;
  }

  // --- GraphQL over HTTP ---------------------------------------------------------------
  async function graphql(query, variables) {
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        cache: "no-store",
        headers: {
          "Content-Type": "application/json",
          "Accept": "application/json",
          "Authorization": `Bearer ${key}`,
        },
        body: JSON.stringify({ query, variables }),
      });
    } catch (error) {
      throw new Error(`server unreachable (${error.message})`);
    }
    let body = null;
    try { body = await response.json(); } catch (_error) { body = null; }
    const first = body && Array.isArray(body.errors) && body.errors[0];
    const code = first && first.extensions && first.extensions.code;
    if (response.status === 401) {
      throw new FatalError(`API key refused: ${(first && first.message) || "unauthenticated"}`);
    }
    if (!response.ok || !body) throw new Error(`HTTP ${response.status}`);
    if (first) {
      const text = `${first.message}${code ? ` (${code})` : ""}`;
      throw FATAL_CODES.has(code) || code === "BAD_USER_INPUT"
        ? new FatalError(text) : new Error(text);
    }
    return body.data;
  }

  // --- the profile table ---------------------------------------------------------------
  function formatTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const sameDay = date.toDateString() === new Date().toDateString();
    return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
  }

  function setTime(element, iso) {
    element.textContent = formatTime(iso);
    element.dateTime = iso || "";
    element.title = iso || "";
  }

  function compareKeys(a, b) {
    return a.topic.localeCompare(b.topic) || a.subTopic.localeCompare(b.subTopic);
  }

  function createRow(id) {
    const tr = document.createElement("tr");
    tr.dataset.entryId = id;
    for (const name of ["topic", "sub-topic", "content", "source", "updated"]) {
      const td = document.createElement("td");
      td.className = name;
      tr.append(td);
    }
    const badge = document.createElement("span");
    badge.className = "badge";
    tr.querySelector(".source").append(badge);
    tr.querySelector(".updated").append(document.createElement("time"));
    return tr;
  }

  function upsertRow(entry, flash) {
    let tr = rows.get(entry.id);
    if (!tr) {
      tr = createRow(entry.id);
      rows.set(entry.id, tr);
    }
    if (entry.topic != null) tr.dataset.topic = entry.topic;
    if (entry.subTopic != null) tr.dataset.subTopic = entry.subTopic;
    tr.querySelector(".topic").textContent = tr.dataset.topic || "";
    tr.querySelector(".sub-topic").textContent = tr.dataset.subTopic || "";
    if (entry.content != null) tr.querySelector(".content").textContent = entry.content;
    if (entry.source != null) {
      const badge = tr.querySelector(".badge");
      badge.textContent = entry.source;
      badge.dataset.source = entry.source;
    }
    if (entry.updatedAt) setTime(tr.querySelector("time"), entry.updatedAt);
    placeRow(tr);
    if (flash) {
      tr.classList.remove("flash");
      void tr.offsetWidth;  // restart the animation
      tr.classList.add("flash");
    }
  }

  function placeRow(tr) {
    const mine = { topic: tr.dataset.topic || "", subTopic: tr.dataset.subTopic || "" };
    let before = null;
    for (const other of els.rows.children) {
      if (other === tr) continue;
      const theirs = { topic: other.dataset.topic || "", subTopic: other.dataset.subTopic || "" };
      if (compareKeys(mine, theirs) < 0) { before = other; break; }
    }
    if (tr.parentNode !== els.rows || tr.nextSibling !== before) {
      els.rows.insertBefore(tr, before);
    }
  }

  function removeRow(id) {
    const tr = rows.get(id);
    if (tr) {
      rows.delete(id);
      tr.remove();
    }
  }

  function refreshTable() {
    let previous = null;
    for (const tr of els.rows.children) {
      tr.classList.toggle("same-topic", previous !== null && previous === tr.dataset.topic);
      previous = tr.dataset.topic;
    }
    const n = rows.size;
    els.count.textContent = `${n} ${n === 1 ? "entry" : "entries"}`;
    els.profileEmpty.hidden = n > 0;
  }

  function renderProfile(entries) {
    rows.clear();
    els.rows.replaceChildren();
    for (const entry of entries) upsertRow(entry, false);
    refreshTable();
  }

  // --- the change log ------------------------------------------------------------------
  function span(className, text) {
    const element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function logItem(change) {
    const li = document.createElement("li");
    li.dataset.kind = change.kind;
    li.dataset.cursor = change.cursor;
    if (change.entryId) li.dataset.entryId = change.entryId;
    const head = document.createElement("div");
    head.className = "head";
    const time = document.createElement("time");
    time.className = "time";
    setTime(time, change.createdAt);
    head.append(time, span("kind", KIND_LABELS[change.kind] || change.kind));
    if (change.topic != null || change.subTopic != null) {
      head.append(span("key", `${change.topic || ""} / ${change.subTopic || ""}`));
    }
    if (change.source) {
      const badge = span("badge", change.source);
      badge.dataset.source = change.source;
      head.append(badge);
    }
    li.append(head);

    const detail = document.createElement("div");
    detail.className = "detail";
    if (change.kind === "FLUSH_FAILED") {
      detail.append(span("error", change.error || "unknown error"));
    } else if (change.kind === "BUFFER_FLUSHED") {
      const bits = [];
      if (change.flushId) bits.push(`flush ${shortId(change.flushId)}`);
      if (change.eventId) bits.push(`event ${shortId(change.eventId)}`);
      detail.append(span("flush", bits.join(" · ") || "flushed"));
    } else {
      if (change.oldValue != null) detail.append(span("old", change.oldValue));
      if (change.oldValue != null || change.newValue != null) {
        detail.append(span("arrow", "→"));
      }
      if (change.newValue != null) detail.append(span("new", change.newValue));
    }
    if (detail.childNodes.length) li.append(detail);
    return li;
  }

  function addLog(change, flash) {
    const li = logItem(change);
    if (flash) li.classList.add("flash");
    els.log.prepend(li);
    while (els.log.children.length > LOG_MAX) els.log.lastElementChild.remove();
    refreshLog();
  }

  function refreshLog() {
    const n = els.log.children.length;
    els.logEmpty.hidden = n > 0;
    els.logCount.textContent = n ? `${n} shown` : "";
  }

  // --- applying the feed ---------------------------------------------------------------
  function applyChange(change, live) {
    lastCursor = change.cursor;
    const entry = {
      id: change.entryId, topic: change.topic, subTopic: change.subTopic,
      content: change.newValue, source: change.source, updatedAt: change.createdAt,
    };
    if (change.entryId) {
      if (change.kind === "ENTRY_ADDED" || change.kind === "ENTRY_UPDATED") {
        upsertRow(entry, live);
      } else if (change.kind === "ENTRY_DELETED") {
        removeRow(change.entryId);
      }
    }
    refreshTable();
    addLog(change, live);
    if (live) ops.changed(change);
  }

  async function loadSnapshot(myRun) {
    // The feed's cursor is read before the profile: the subscription resumes from it, so
    // a change committed between the two reads is replayed, never lost.
    const feed = await graphql(CHANGES_QUERY, { userId, last: LOG_ON_LOAD });
    if (!feed.user) throw new FatalError(`No user "${userId}" in this project.`);
    const profile = await graphql(PROFILE_QUERY, { userId });
    if (!profile.user) throw new FatalError(`No user "${userId}" in this project.`);
    if (myRun !== run) return;
    renderProfile(profile.user.profile);
    els.log.replaceChildren();
    const changes = feed.user.changes.nodes;
    for (const change of changes) addLog(change, false);
    refreshLog();
    // Where the feed stood when read (its start, for a user without changes yet).
    lastCursor = feed.user.changesCursor;
    haveSnapshot = true;
  }

  // --- the live connection -------------------------------------------------------------
  function clearSocketTimers() {
    for (const timer of socketTimers) clearTimeout(timer);
    socketTimers = [];
  }

  function later(ms, callback) {
    const timer = setTimeout(() => {
      socketTimers = socketTimers.filter((t) => t !== timer);
      callback();
    }, ms);
    socketTimers.push(timer);
  }

  function dropSocket() {
    clearSocketTimers();
    const old = socket;
    socket = null;
    if (old) {
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try { old.close(1000, "dashboard"); } catch (_error) { /* already closed */ }
    }
  }

  function stop(reason) {
    run += 1;
    clearTimeout(reconnectTimer);
    dropSocket();
    setStatus("stopped", reason ? "stopped" : "not connected");
    if (reason) els.status.title = reason;
    showMessage(reason || "");
  }

  function scheduleReconnect(myRun, reason) {
    if (myRun !== run) return;
    dropSocket();
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    attempt += 1;
    setStatus("reconnecting", `reconnecting in ${(delay / 1000).toFixed(1)} s (${reason})`);
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => connect(myRun), delay);
  }

  function fail(myRun, error) {
    if (myRun !== run) return;
    if (error instanceof FatalError) stop(error.message);
    else scheduleReconnect(myRun, error.message);
  }

  async function connect(myRun) {
    if (myRun !== run) return;
    setStatus(haveSnapshot ? "reconnecting" : "connecting",
              haveSnapshot ? "reconnecting…" : "connecting…");
    try {
      // Every connection, a reconnection too, reads the profile again: what changed while
      // the page was offline (or a change the feed does not carry) is never left stale.
      await loadSnapshot(myRun);
    } catch (error) {
      fail(myRun, error);
      return;
    }
    if (myRun === run) openSocket(myRun);
  }

  function openSocket(myRun) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/graphql`, "graphql-transport-ws");
    socket = ws;
    let subscriptionId = null;
    let subscriptions = 0;
    let awaitingPong = false;
    const send = (message) => ws.send(JSON.stringify(message));
    const current = () => myRun === run && socket === ws;

    later(ACK_TIMEOUT_MS, () => {
      if (current() && subscriptionId === null) scheduleReconnect(myRun, "no connection_ack");
    });

    function heartbeat() {
      later(PING_EVERY_MS, () => {
        if (!current()) return;
        awaitingPong = true;
        send({ type: "ping" });
        later(PONG_TIMEOUT_MS, () => {
          if (current() && awaitingPong) scheduleReconnect(myRun, "no pong from the server");
        });
        heartbeat();
      });
    }

    function subscriptionFailed(errors) {
      const first = (errors && errors[0]) || {};
      const code = first.extensions && first.extensions.code;
      const text = `${first.message || "subscription failed"}${code ? ` (${code})` : ""}`;
      if (code === "BAD_USER_INPUT" && lastCursor !== null) {
        // The saved cursor is no longer accepted: start over from a fresh snapshot.
        lastCursor = null;
        haveSnapshot = false;
        scheduleReconnect(myRun, text);
      } else if (FATAL_CODES.has(code) || code === "BAD_USER_INPUT") {
        stop(text);
      } else {
        scheduleReconnect(myRun, text);
      }
    }

    ws.onopen = () => {
      if (current()) send({ type: "connection_init", payload: { Authorization: `Bearer ${key}` } });
    };
    ws.onmessage = (event) => {
      if (!current()) return;
      let message;
      try { message = JSON.parse(event.data); } catch (_error) { message = null; }
      if (!message || typeof message.type !== "string") {
        scheduleReconnect(myRun, "unreadable message");
        return;
      }
      switch (message.type) {
        case "connection_ack":
          subscriptions += 1;
          subscriptionId = `feed-${subscriptions}`;
          send({
            id: subscriptionId, type: "subscribe",
            payload: { query: SUBSCRIPTION, variables: { userId, since: lastCursor } },
          });
          setStatus("connected", "connected");
          showMessage("");
          // A reconnection: the operator panels are read again too, once subscribed (what
          // changes after this read comes through the feed).
          if (connections > 0) ops.refresh();
          connections += 1;
          later(STABLE_AFTER_MS, () => { if (current()) attempt = 0; });
          heartbeat();
          break;
        case "ping":
          send({ type: "pong" });
          break;
        case "pong":
          awaitingPong = false;
          break;
        case "next":
          if (message.id !== subscriptionId || !message.payload) break;
          if (message.payload.errors && message.payload.errors.length) {
            subscriptionFailed(message.payload.errors);
          } else if (message.payload.data && message.payload.data.profileUpdated) {
            applyChange(message.payload.data.profileUpdated, true);
          }
          break;
        case "error":
          if (message.id === subscriptionId) subscriptionFailed(message.payload);
          break;
        case "complete":
          // The server ended the feed (e.g. its broker failed): resume from the cursor.
          if (message.id === subscriptionId) scheduleReconnect(myRun, "feed ended by the server");
          break;
        default:
          break;
      }
    };
    ws.onclose = (event) => {
      if (!current()) return;
      if (event.code === 4403) {
        stop("the live feed refused the API key");
        return;
      }
      scheduleReconnect(myRun, `socket closed${event.code ? ` (${event.code})` : ""}`);
    };
    ws.onerror = () => { /* onclose follows and reconnects */ };
  }

  // --- search --------------------------------------------------------------------------
  let searchSeq = 0;         // only the newest search's answer is shown

  function hitText(hit) {
    if (hit.entry) return `${hit.entry.topic} / ${hit.entry.subTopic}: ${hit.entry.content}`;
    if (hit.event) return hit.event.summary;
    return hit.fact ? hit.fact.content : "";
  }

  function showSearch(items, note, mode) {
    els.searchResults.replaceChildren(...items);
    els.searchEmpty.textContent = note;
    els.searchEmpty.hidden = items.length > 0;
    els.searchMode.textContent = mode;
  }

  function resetSearch(enabled) {
    searchSeq += 1;
    els.searchInput.disabled = !enabled;
    els.searchButton.disabled = !enabled;
    showSearch([], enabled ? "Type a question about this user."
      : "Connect, then search profile entries, events and facts.", "");
  }

  async function search(text) {
    const mySeq = ++searchSeq;
    const myRun = run;
    showSearch([], "Searching…", "");
    let found;
    try {
      const data = await graphql(SEARCH_QUERY, { userId, query: text });
      found = data.user ? data.user.search : null;
    } catch (error) {
      if (mySeq === searchSeq && myRun === run) showSearch([], `Search failed: ${error.message}`, "");
      return;
    }
    if (mySeq !== searchSeq || myRun !== run) return;  // a newer search or another user
    if (!found) { showSearch([], "No such user.", ""); return; }
    if (found.__typename === "InvalidInput") {
      showSearch([], `${found.field}: ${found.message}`, "");
      return;
    }
    const items = found.hits.map((hit, index) => {
      const li = document.createElement("li");
      li.dataset.kind = hit.kind;
      li.dataset.rank = String(index + 1);
      li.append(span("kind", hit.kind.toLowerCase()), span("score", hit.score.toFixed(4)),
                span("text", hitText(hit)));
      return li;
    });
    let mode = found.mode.toLowerCase();
    if (found.reason) mode += ` · ${found.reason}`;
    else if (found.keywordOnlyRows) mode += ` · ${found.keywordOnlyRows} not yet embedded`;
    showSearch(items, "Nothing found.", mode);
  }

  els.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = els.searchInput.value.trim();
    if (text && key && userId) search(text);
  });

  // --- starting ------------------------------------------------------------------------
  function start(newKey, newUser) {
    stop("");
    key = newKey;
    userId = newUser;
    lastCursor = null;
    haveSnapshot = false;
    connections = 0;
    attempt = 0;
    rows.clear();
    els.rows.replaceChildren();
    els.log.replaceChildren();
    refreshTable();
    refreshLog();
    resetSearch(true);
    els.titleUser.textContent = userId;
    document.title = `${userId} · Powermemo live profile`;
    ops.userSelected();
    connect(run);
  }

  // The operator panels share this page's key (in a header) and its selected user.
  const ops = createOperator({
    graphql: (query, variables) => graphql(query, variables),
    currentUser: () => userId,
    selectUser: (id) => {
      els.user.value = id;
      els.form.requestSubmit();
    },
  });

  function rememberKey(value) {
    try { sessionStorage.setItem(KEY_STORAGE, value); } catch (_error) { /* storage off */ }
  }

  function savedKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch (_error) { return ""; }
  }

  function showUserInUrl(user) {
    // The key never stays in the address bar (history, bookmarks, screenshots).
    const url = new URL(location.href);
    url.searchParams.delete("key");
    url.searchParams.set("user", user);
    history.replaceState(null, "", url);
  }

  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const newKey = els.key.value.trim();
    const newUser = els.user.value.trim();
    if (!newKey) return;
    rememberKey(newKey);
    if (newKey !== key) {
      key = newKey;
      ops.keyKnown();
    }
    if (!newUser) {
      setStatus("idle", "pick a user from the list");
      return;
    }
    showUserInUrl(newUser);
    start(newKey, newUser);
  });

  const params = new URLSearchParams(location.search);
  const initialKey = params.get("key") || savedKey();
  const initialUser = params.get("user") || "";
  els.key.value = initialKey;
  els.user.value = initialUser;
  refreshTable();
  refreshLog();
  if (initialKey) {
    rememberKey(initialKey);
    key = initialKey;
    ops.keyKnown();
  }
  if (initialKey && initialUser) {
    showUserInUrl(initialUser);
    start(initialKey, initialUser);
  } else {
    setStatus("idle", "enter an API key and a user id");
  }
})();
