// A real server for the tests: test/server.py (the repository's scripted LLM and
// `powermemo-gql serve` on a temporary SQLite database), driven over its stdin.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..", "..");
const python = process.env.POWERMEMO_PYTHON ?? path.join(repo, ".venv", "bin", "python");

/** Start the server; resolves to {url, apiKey, rootToken, stop(), start(), close()}. */
export async function startServer() {
  const child = spawn(python, [path.join(here, "server.py")], {
    cwd: repo,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = once(child, "exit").then(([code]) => {
    throw new Error(`test/server.py exited with ${code}`);
  });
  exited.catch(() => {}); // observed by `answer`, not left unhandled

  async function answer() {
    const line = await Promise.race([lines.next(), exited]);
    if (line.done) {
      throw new Error("test/server.py closed its output");
    }
    return JSON.parse(line.value);
  }

  async function command(name) {
    child.stdin.write(`${name}\n`);
    return answer();
  }

  const started = await answer();
  return {
    ...started,
    /** Stop the server (SIGTERM: its sockets close with 1012), keeping its database. */
    stop: () => command("stop"),
    /** Start it again on the same port and database. */
    start: () => command("start"),
    async close() {
      child.stdin.end();
      await once(child, "exit");
    },
  };
}

/** A port nothing listens on (taken from the OS, then released). */
export async function unusedPort() {
  const net = await import("node:net");
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** Resolves to the next value of an async iterator, or rejects after `ms`. */
export function within(promise, ms = 15_000, what = "a change") {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
