// The client against a real server (test/server.py): helpers, memory and typed errors.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  AlreadyExistsError,
  AuthenticationError,
  ConnectionFailedError,
  endpoints,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  Powermemo,
  PowermemoError,
  RateLimitedError,
} from "../dist/index.js";
import { startServer, unusedPort } from "./support.js";

let server;
let memory;

before(async () => {
  server = await startServer();
  memory = new Powermemo(server.url, server.apiKey);
});

after(async () => {
  await server?.close();
});

test("users: create, get, update, delete", async () => {
  const alice = await memory.createUser("crud-alice", { plan: "pro" });
  assert.equal(alice.userId, "crud-alice");
  assert.match(atob(alice.id), /^User:/); // the global id, for node(id:)
  assert.deepEqual(alice.data, { plan: "pro" });
  assert.deepEqual(await memory.getUser("crud-alice"), alice);

  const updated = await memory.updateUser("crud-alice", { plan: "team" });
  assert.deepEqual(updated.data, { plan: "team" });
  assert.deepEqual((await memory.getUser("crud-alice")).data, { plan: "team" });

  const generated = await memory.createUser();
  assert.match(generated.userId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(generated.data, {});

  await memory.deleteUser("crud-alice");
  assert.equal(await memory.getUser("crud-alice"), null);
  await assert.rejects(memory.deleteUser("crud-alice"), (error) => {
    assert.ok(error instanceof NotFoundError);
    assert.equal(error.code, "NOT_FOUND");
    assert.equal(error.typename, "NotFound");
    return true;
  });
});

test("the endpoint is found from the base URL or given as it is", () => {
  assert.deepEqual(endpoints("http://127.0.0.1:8019"), {
    http: "http://127.0.0.1:8019/graphql",
    ws: "ws://127.0.0.1:8019/graphql",
  });
  assert.deepEqual(endpoints("https://memory.example/api/graphql/"), {
    http: "https://memory.example/api/graphql",
    ws: "wss://memory.example/api/graphql",
  });
  assert.throws(() => endpoints("ftp://memory.example"), TypeError);
});

test("insert, flush, profile, context and events through the scripted LLM", async () => {
  await memory.createUser("alice");
  const chat = await memory.insertChat(
    "alice",
    [
      { role: "user", content: "Hi, I'm Alice and I teach chemistry in Lyon.", alias: "Alice", createdAt: new Date("2024-05-01T12:00:00Z") },
      ["assistant", "Nice to meet you, Alice!"],
    ],
    { fields: { channel: "web" } },
  );
  assert.equal(chat.type, "CHAT");
  const document = await memory.insertDocument("alice", "Alice teaches chemistry in Lyon.", { title: "bio" });
  assert.equal(document.type, "DOCUMENT");

  const flush = await memory.flush("alice");
  assert.equal(flush.status, "DONE");
  assert.equal(flush.trigger, "MANUAL");
  assert.equal(flush.itemCount, 2);
  assert.ok(flush.llmCalls > 0);
  assert.equal(flush.droppedItems, 0);
  assert.equal(flush.embeddingTexts, 0); // the test server embeds nothing
  assert.equal(flush.embeddingTokens, 0);
  assert.deepEqual(await memory.flushBuffer("alice"), { outcome: "NOTHING_TO_FLUSH", flush: null });
  assert.equal(await memory.flush("alice"), null);

  const profile = await memory.profile("alice");
  assert.deepEqual(
    profile.map((entry) => [entry.topic, entry.subTopic, entry.content, entry.source]).sort(),
    [
      ["contact_info", "city", "Lyon", "LLM"],
      ["work", "title", "chemistry teacher", "LLM"],
    ],
  );
  assert.deepEqual(new Set(profile.flatMap((entry) => entry.sourceBlobIds)), new Set([chat.id, document.id]));
  const work = await memory.profile("alice", { topics: "work" });
  assert.deepEqual(work.map((entry) => entry.subTopic), ["title"]);
  assert.equal((await memory.profile("alice", { topk: 1 })).length, 1);

  const context = await memory.context("alice", { maxTokens: 500 });
  assert.match(context.text, /^<memory>[\s\S]*chemistry teacher[\s\S]*<\/memory>$/);
  assert.ok(context.tokens > 0 && context.tokens <= 500);
  assert.equal(context.profileEntries, 2);
  assert.equal(context.events, 1);
  const onlyWork = await memory.context("alice", { onlyTopics: ["work"], profileEventRatio: 1 });
  assert.equal(onlyWork.profileEntries, 1);
  assert.doesNotMatch(onlyWork.text, /Lyon::|city: Lyon/);

  const events = await memory.events("alice");
  assert.equal(events.length, 1);
  assert.equal(events[0].summary, "Alice teaches chemistry in Lyon.");
  assert.equal(events[0].id, flush.eventId);
  assert.deepEqual(
    events[0].profileDelta.map((d) => [d.action, d.topic, d.subTopic, d.previous]).sort(),
    [["ADD", "contact_info", "city", null], ["ADD", "work", "title", null]],
  );
  assert.equal(new Date(events[0].happenedFrom).toISOString(), "2024-05-01T12:00:00.000Z"); // createdAt was sent
  assert.equal((await memory.events("alice", { search: "chemistry" })).length, 1);
  assert.deepEqual(await memory.events("alice", { search: "zebra" }), []);
});

test("profile entries by hand, imported ones, and the change feed", async () => {
  await memory.createUser("bob");
  const cursor = await memory.changesCursor("bob");
  const entry = await memory.addProfileEntry("bob", "work", "title", "teacher");
  assert.equal(entry.source, "MANUAL");
  await assert.rejects(memory.addProfileEntry("bob", "work", "title", "again"), AlreadyExistsError);

  const updated = await memory.updateProfileEntry(entry.id, "head teacher");
  assert.equal(updated.content, "head teacher");
  assert.deepEqual(updated.history.map((revision) => [revision.content, revision.action]), [["teacher", "UPDATE"]]);
  await memory.deleteProfileEntry(entry.id);
  await assert.rejects(memory.deleteProfileEntry(entry.id), NotFoundError);

  const changes = await memory.changes("bob", { after: cursor });
  assert.deepEqual(
    changes.map((change) => [change.kind, change.oldValue, change.newValue]),
    [
      ["ENTRY_ADDED", null, "teacher"],
      ["ENTRY_UPDATED", "teacher", "head teacher"],
      ["ENTRY_DELETED", "head teacher", null],
    ],
  );
  const page = await memory.changes("bob", { after: cursor, first: 1 });
  assert.deepEqual(await memory.changes("bob", { after: page[0].cursor, first: 1 }), [changes[1]]);

  await memory.createUser("carol");
  const imported = await memory.importProfile("carol", "Carol teaches chemistry in Lyon.");
  assert.deepEqual(imported.map((e) => [e.content, e.source]).sort(), [["Lyon", "IMPORT"], ["chemistry teacher", "IMPORT"]]);
});

test("execute runs any document and returns its data", async () => {
  await memory.createUser("dave", { n: 1 });
  const data = await memory.execute("query($id: ID!) { user(userId: $id) { userId data } }", { id: "dave" });
  assert.deepEqual(data, { user: { userId: "dave", data: { n: 1 } } });
  // A result-union error member is data for execute, not an exception.
  const taken = await memory.execute('mutation { createUser(input: {userId: "dave"}) { __typename ... on Error { code } } }');
  assert.deepEqual(taken, { createUser: { __typename: "UserAlreadyExists", code: "ALREADY_EXISTS" } });
  await assert.rejects(memory.execute("{ nope }"), (error) => {
    assert.ok(error instanceof PowermemoError);
    assert.match(error.message, /nope/);
    return true;
  });
});

describe("typed errors", () => {
  test("unknown users are NotFoundError", async () => {
    for (const call of [
      () => memory.profile("nobody"),
      () => memory.context("nobody"),
      () => memory.events("nobody"),
      () => memory.changes("nobody"),
      () => memory.changesCursor("nobody"),
      () => memory.updateUser("nobody", {}),
    ]) {
      await assert.rejects(call(), (error) => error instanceof NotFoundError && error.code === "NOT_FOUND");
    }
  });

  test("InvalidInputError names the field, from a result union or a top-level error", async () => {
    await assert.rejects(memory.createUser("not valid!"), (error) => {
      assert.ok(error instanceof InvalidInputError);
      assert.equal(error.code, "INVALID_INPUT");
      assert.equal(error.field, "id");
      assert.equal(error.typename, "InvalidInput");
      return true;
    });
    await memory.createUser("erin");
    await assert.rejects(memory.insertChat("erin", [["user", ""]]), (error) => {
      assert.ok(error instanceof InvalidInputError);
      assert.equal(error.field, "blob.chat.messages[0].content");
      return true;
    });
    await assert.rejects(memory.changes("erin", { after: "not-a-cursor" }), (error) => {
      assert.ok(error instanceof InvalidInputError);
      assert.equal(error.code, "BAD_USER_INPUT");
      assert.equal(error.field, "after");
      return true;
    });
  });

  test("chat messages are checked before anything is sent", async () => {
    let sent = 0;
    const counting = new Powermemo(server.url, server.apiKey, {
      fetch: (...args) => {
        sent += 1;
        return fetch(...args);
      },
    });
    const mistakes = [
      [[["system", "Be brief."]], "blob.chat.messages[0].role"],
      [[["user", "Hi"], { role: "user", text: "Hi" }], "blob.chat.messages[1]"],
      [[["user", "Hi"], ["assistant", 42]], "blob.chat.messages[1].content"],
      [[{ role: "user", content: "Hi", createdAt: 1714564800 }], "blob.chat.messages[0].createdAt"],
    ];
    for (const [messages, field] of mistakes) {
      await assert.rejects(counting.insertChat("erin", messages), (error) => error instanceof InvalidInputError && error.field === field);
    }
    assert.equal(sent, 0);
  });

  test("a bad key is AuthenticationError (HTTP 401); the root token on user data is ForbiddenError", async () => {
    await assert.rejects(new Powermemo(server.url, "pm_wrong").getUser("alice"), (error) => {
      assert.ok(error instanceof AuthenticationError);
      assert.equal(error.code, "UNAUTHENTICATED");
      assert.equal(error.status, 401);
      return true;
    });
    await assert.rejects(new Powermemo(server.url, server.rootToken).getUser("alice"), ForbiddenError);
  });

  test("an unreachable server is ConnectionFailedError", async () => {
    const nowhere = new Powermemo(`http://127.0.0.1:${await unusedPort()}`, server.apiKey);
    await assert.rejects(nowhere.getUser("alice"), (error) => {
      assert.ok(error instanceof ConnectionFailedError);
      assert.equal(error.code, "CONNECTION_FAILED");
      assert.ok(error.cause instanceof Error);
      return true;
    });
  });

  test("refusals before GraphQL keep their status: 429 with Retry-After, 503 with its code", async () => {
    // The test server has no rate limit and a healthy database: these answers are scripted.
    const answering = (status, body, headers = {}) =>
      new Powermemo(server.url, server.apiKey, {
        fetch: async () => new Response(body, { status, headers: { "content-type": "application/json", ...headers } }),
      });
    const limited = answering(429, JSON.stringify({ errors: [{ message: "slow down", extensions: { code: "RATE_LIMITED" } }] }), {
      "retry-after": "7",
    });
    await assert.rejects(limited.getUser("alice"), (error) => {
      assert.ok(error instanceof RateLimitedError);
      assert.equal(error.retryAfter, 7);
      assert.equal(error.status, 429);
      return true;
    });
    const busy = answering(503, JSON.stringify({ errors: [{ message: "busy", extensions: { code: "DATABASE_BUSY" } }] }));
    await assert.rejects(busy.getUser("alice"), (error) => error.code === "DATABASE_BUSY" && error.status === 503);
    const proxy = answering(429, "Too Many Requests", { "content-type": "text/plain", "retry-after": "3" });
    await assert.rejects(proxy.getUser("alice"), (error) => error instanceof RateLimitedError && error.retryAfter === 3);
  });
});
