// profileUpdates against a real server: live changes, `since`, kinds, typed refusals, and
// resuming after the server closes the socket (a restart: 1012).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  AuthenticationError,
  ConnectionFailedError,
  InvalidInputError,
  NotFoundError,
  Powermemo,
} from "../dist/index.js";
import { startServer, unusedPort, within } from "./support.js";
import WebSocket from "ws";

let server;
let memory;

before(async () => {
  server = await startServer();
  memory = new Powermemo(server.url, server.apiKey);
});

after(async () => {
  await server?.close();
});

/** Every change of `updates`, pushed to a queue that `next()` takes from. */
function collect(updates) {
  const received = [];
  const waiting = [];
  const done = (async () => {
    for await (const change of updates) {
      const taker = waiting.shift();
      if (taker) {
        taker(change);
      } else {
        received.push(change);
      }
    }
  })();
  done.catch(() => {}); // awaited by the tests that expect it to end
  return {
    done,
    pending: () => received.length,
    next: () => within(received.length ? Promise.resolve(received.shift()) : new Promise((resolve) => waiting.push(resolve))),
  };
}

test("a subscription receives a change as it is committed, and break closes it", async () => {
  await memory.createUser("alice");
  const updates = memory.profileUpdates("alice");
  const start = await updates.start();
  assert.equal(start, await memory.changesCursor("alice"));
  const entry = await memory.addProfileEntry("alice", "work", "title", "teacher");
  for await (const change of updates) {
    assert.equal(change.kind, "ENTRY_ADDED");
    assert.equal(change.entryId, entry.id);
    assert.deepEqual([change.topic, change.subTopic, change.newValue, change.source], ["work", "title", "teacher", "MANUAL"]);
    assert.equal(updates.cursor, change.cursor);
    break;
  }
  // The loop is over: the iterator is finished, so nothing more is delivered.
  assert.deepEqual(await updates[Symbol.asyncIterator]().next(), { done: true, value: undefined });
});

test("since replays the changes after a cursor, then follows; kinds filters", async () => {
  await memory.createUser("bob");
  const since = await memory.changesCursor("bob");
  const entry = await memory.addProfileEntry("bob", "work", "title", "teacher");
  await memory.updateProfileEntry(entry.id, "head teacher");

  const everything = memory.profileUpdates("bob", { since });
  const all = collect(everything);
  const updatedOnly = memory.profileUpdates("bob", { since, kinds: ["ENTRY_UPDATED"] });
  const filtered = collect(updatedOnly);
  assert.deepEqual([(await all.next()).newValue, (await all.next()).newValue], ["teacher", "head teacher"]);
  assert.equal((await filtered.next()).newValue, "head teacher");

  await memory.deleteProfileEntry(entry.id);
  const school = await memory.addProfileEntry("bob", "work", "school", "Lycée du Parc");
  const deleted = await all.next();
  assert.deepEqual([deleted.kind, deleted.oldValue], ["ENTRY_DELETED", "head teacher"]);
  assert.equal((await all.next()).newValue, "Lycée du Parc");
  await memory.updateProfileEntry(school.id, "Lycée Ampère");
  assert.equal((await filtered.next()).newValue, "Lycée Ampère"); // the add and delete were skipped
  await Promise.all([everything.close(), updatedOnly.close()]);
  await Promise.all([all.done, filtered.done]); // close() ends the iterations
});

test("a flush's changes arrive live", async () => {
  await memory.createUser("carol");
  const updates = memory.profileUpdates("carol", { kinds: ["BUFFER_FLUSHED", "ENTRY_ADDED"] });
  await updates.start();
  const changes = collect(updates);
  await memory.insertChat("carol", [["user", "Hi, I'm Carol and I teach chemistry in Lyon."]]);
  const flush = await memory.flush("carol");
  const kinds = [];
  for (let i = 0; i < 3; i += 1) {
    const change = await changes.next();
    assert.equal(change.flushId, flush.id);
    kinds.push(change.kind);
  }
  assert.deepEqual(kinds.sort(), ["BUFFER_FLUSHED", "ENTRY_ADDED", "ENTRY_ADDED"]);
  await updates.close();
});

test("refusals are typed and not retried", async () => {
  assert.throws(() => memory.profileUpdates("alice", { kinds: ["NOPE"] }), (error) => error instanceof InvalidInputError && error.field === "kinds");
  const cursor = await memory.changesCursor("alice");
  const first = (updates) => within(updates[Symbol.asyncIterator]().next(), 15_000, "refusal");
  await assert.rejects(first(memory.profileUpdates("nobody")), NotFoundError); // read over HTTP
  await assert.rejects(first(memory.profileUpdates("nobody", { since: cursor })), NotFoundError); // over the socket
  await assert.rejects(first(memory.profileUpdates("alice", { since: "not-a-cursor" })), (error) => {
    assert.ok(error instanceof InvalidInputError);
    assert.equal(error.field, "since");
    return true;
  });
  const wrong = new Powermemo(server.url, "pm_wrong");
  await assert.rejects(first(wrong.profileUpdates("alice", { since: cursor })), (error) => {
    assert.ok(error instanceof AuthenticationError); // closed with 4403 after connection_init
    assert.equal(error.code, "UNAUTHENTICATED");
    return true;
  });
});

test("out of retries, a subscription fails with ConnectionFailedError", async () => {
  const nowhere = new Powermemo(`http://127.0.0.1:${await unusedPort()}`, server.apiKey, {
    retry: { attempts: 2, backoffMs: 10, maxBackoffMs: 20 },
  });
  const updates = nowhere.profileUpdates("alice", { since: "any" });
  await assert.rejects(within(updates[Symbol.asyncIterator]().next(), 15_000, "failure"), (error) => {
    assert.ok(error instanceof ConnectionFailedError);
    assert.equal(error.code, "CONNECTION_FAILED");
    assert.match(error.message, /stayed down after 2 reconnections/);
    assert.ok(error.cause !== undefined);
    return true;
  });
});

test("after the server closes the socket, the subscription resumes from its last cursor", async () => {
  await memory.createUser("dave");
  // The `since` of every subscribe message sent, read off the sockets.
  const subscribedSince = [];
  class RecordingWebSocket extends WebSocket {
    send(data, ...rest) {
      const message = JSON.parse(String(data));
      if (message.type === "subscribe") {
        subscribedSince.push(message.payload.variables.since);
      }
      return super.send(data, ...rest);
    }
  }
  const recorded = new Powermemo(server.url, server.apiKey, { webSocketImpl: RecordingWebSocket });
  // A restart of the Python server takes seconds on a busy machine: room for about a minute.
  const updates = recorded.profileUpdates("dave", { retry: { attempts: 60, backoffMs: 100, maxBackoffMs: 1000 } });
  const start = await updates.start();
  const changes = collect(updates);
  await memory.addProfileEntry("dave", "work", "title", "teacher");
  const first = await changes.next();

  await server.stop(); // SIGTERM: open sockets are closed with 1012
  // Written while the subscription is down: delivered after it comes back, through `since`.
  await server.start();
  await memory.addProfileEntry("dave", "work", "city", "Lyon");
  const second = await within(changes.next(), 60_000);
  await memory.addProfileEntry("dave", "work", "school", "Lycée du Parc");
  const third = await changes.next();

  assert.deepEqual([first, second, third].map((change) => change.newValue), ["teacher", "Lyon", "Lycée du Parc"]);
  assert.equal(changes.pending(), 0); // nothing was delivered twice
  assert.equal(updates.cursor, third.cursor);
  // It resubscribed from the last change it had delivered, not from the start or from now.
  // (Attempts while the server was down never got as far as a subscribe message.)
  assert.deepEqual(subscribedSince, [start, first.cursor]);
  await updates.close();
  await changes.done;
});
