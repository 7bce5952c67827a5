// The subscription's resume logic against a scripted graphql-transport-ws peer (no Python
// server): what a real server does only when its broker fails (FEED_INTERRUPTED) or ends a
// stream, and the backoff between reconnections.

import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";

import { WebSocketServer } from "ws";

import { ConnectionFailedError, Powermemo } from "../dist/index.js";
import { retryDelayMs } from "../dist/subscriptions.js";
import { within } from "./support.js";

function change(n) {
  return {
    cursor: `cursor-${n}`,
    kind: "ENTRY_ADDED",
    entryId: `entry-${n}`,
    topic: "work",
    subTopic: `sub-${n}`,
    oldValue: null,
    newValue: `value-${n}`,
    source: "MANUAL",
    flushId: null,
    eventId: null,
    error: null,
    createdAt: "2026-01-01T00:00:00+00:00",
  };
}

/** A graphql-transport-ws peer: `script(subscribeNumber, send, socket)` answers each subscribe. */
async function scriptedPeer(script) {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: () => "graphql-transport-ws" });
  await once(server, "listening");
  const seen = []; // per connection: {init payload, subscribe variables}
  const sockets = []; // the server's side of each connection
  let subscribes = 0;
  server.on("connection", (socket) => {
    sockets.push(socket);
    const connection = { init: null, variables: null };
    seen.push(connection);
    socket.on("message", (raw) => {
      const message = JSON.parse(String(raw));
      if (message.type === "connection_init") {
        connection.init = message.payload;
        socket.send(JSON.stringify({ type: "connection_ack" }));
      } else if (message.type === "subscribe") {
        connection.variables = message.payload.variables;
        subscribes += 1;
        const number = subscribes;
        const send = (type, payload) => socket.send(JSON.stringify({ id: message.id, type, ...(payload ? { payload } : {}) }));
        script(number, send, socket);
      }
    });
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    sockets,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const fast = { attempts: 3, backoffMs: 10, maxBackoffMs: 40 };

test("FEED_INTERRUPTED and an ended stream are resumed from the last cursor", async () => {
  const peer = await scriptedPeer((number, send) => {
    if (number === 1) {
      send("next", { data: { profileUpdated: change(1) } });
      send("next", { errors: [{ message: "Live delivery was interrupted", extensions: { code: "FEED_INTERRUPTED" } }] });
      send("complete");
    } else if (number === 2) {
      send("next", { data: { profileUpdated: change(2) } });
      send("complete"); // the server ended the subscription
    } else {
      send("next", { data: { profileUpdated: change(3) } });
    }
  });
  const memory = new Powermemo(peer.url, "pm_key", { retry: fast });
  const updates = memory.profileUpdates("alice", { since: "cursor-0", kinds: ["ENTRY_ADDED"] });
  const received = [];
  for await (const item of updates) {
    received.push(item.cursor);
    if (received.length === 3) break;
  }
  await peer.close();
  assert.deepEqual(received, ["cursor-1", "cursor-2", "cursor-3"]);
  assert.deepEqual(
    peer.seen.map((connection) => connection.variables.since),
    ["cursor-0", "cursor-1", "cursor-2"],
  );
  for (const connection of peer.seen) {
    assert.deepEqual(connection.init, { Authorization: "Bearer pm_key" });
    assert.deepEqual(connection.variables.kinds, ["ENTRY_ADDED"]);
    assert.equal(connection.variables.userId, "alice");
  }
});

test("a change received resets the count of failed reconnections; graphql-ws never resubscribes by itself", async () => {
  // Every connection delivers one change, then drops: more drops in all than `attempts`,
  // but never more than one in a row without a change, so it goes on.
  const peer = await scriptedPeer((number, send, socket) => {
    send("next", { data: { profileUpdated: change(number) } });
    // 1012 (a restart), or a normal close, after which graphql-ws would resubscribe by
    // itself with the variables it had: the old `since`, repeating changes.
    socket.close(number % 2 ? 1012 : 1000, "bye");
  });
  const memory = new Powermemo(peer.url, "pm_key", { retry: { attempts: 1, backoffMs: 5, maxBackoffMs: 5 } });
  const received = [];
  for await (const item of memory.profileUpdates("alice", { since: "cursor-0" })) {
    received.push(item.cursor);
    if (received.length === 5) break;
  }
  await peer.close();
  assert.deepEqual(received, ["cursor-1", "cursor-2", "cursor-3", "cursor-4", "cursor-5"]);
  const subscribed = peer.seen.filter((connection) => connection.variables !== null);
  assert.deepEqual(
    subscribed.map((connection) => connection.variables.since),
    ["cursor-0", "cursor-1", "cursor-2", "cursor-3", "cursor-4"],
  );
});

test("reconnections that receive nothing run out: ConnectionFailedError with the last cause", async () => {
  const peer = await scriptedPeer((number, send, socket) => socket.close(1011, "broken"));
  const memory = new Powermemo(peer.url, "pm_key", { retry: fast });
  const updates = memory.profileUpdates("alice", { since: "cursor-0" });
  await assert.rejects(within(updates[Symbol.asyncIterator]().next(), 15_000, "failure"), (error) => {
    assert.ok(error instanceof ConnectionFailedError);
    assert.match(error.message, /stayed down after 3 reconnections/);
    assert.ok(error.cause instanceof ConnectionFailedError);
    assert.match(error.cause.message, /1011/);
    return true;
  });
  await peer.close();
  assert.equal(peer.seen.length, 4); // the first connection and three reconnections
});

test("the backoff doubles from backoffMs up to maxBackoffMs, with at most 10% jitter", () => {
  const retry = { attempts: 8, backoffMs: 500, maxBackoffMs: 30_000 };
  const bases = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000];
  bases.forEach((base, index) => {
    const delay = retryDelayMs(retry, index + 1);
    assert.ok(delay >= base && delay <= base * 1.1, `reconnection ${index + 1}: ${delay} ms`);
  });
});

test("a request slower than timeoutMs is ConnectionFailedError TIMEOUT", async () => {
  // A server that never answers; the open request keeps the process alive, as a socket would
  // (AbortSignal.timeout's own timer does not).
  const never = (_url, init) =>
    new Promise((_resolve, reject) => {
      const open = setTimeout(() => {}, 30_000);
      init.signal.addEventListener("abort", () => {
        clearTimeout(open);
        reject(init.signal.reason);
      });
    });
  const memory = new Powermemo("http://127.0.0.1:9", "pm_key", { timeoutMs: 50, fetch: never });
  await assert.rejects(memory.getUser("alice"), (error) => error instanceof ConnectionFailedError && error.code === "TIMEOUT");
});

test("close() ends a waiting iteration and closes its socket; a closed one never connects", async () => {
  const peer = await scriptedPeer(() => {}); // subscribed, and nothing ever changes
  const memory = new Powermemo(peer.url, "pm_key", { retry: fast });
  const updates = memory.profileUpdates("alice", { since: "cursor-0" });
  const iterator = updates[Symbol.asyncIterator]();
  const waiting = iterator.next();
  while (peer.seen.every((connection) => connection.variables === null)) {
    await new Promise((resolve) => setTimeout(resolve, 10)); // until it has subscribed
  }
  const [socket] = peer.sockets;
  const closed = once(socket, "close");
  await updates.close();
  assert.deepEqual(await within(waiting, 5_000, "end"), { done: true, value: undefined });
  await within(closed, 5_000, "closed socket");

  const never = memory.profileUpdates("alice", { since: "cursor-0" });
  await never.close();
  for await (const _change of never) {
    assert.fail("a closed subscription delivered a change");
  }
  assert.equal(peer.seen.length, 1);
  await peer.close();
});
