// The README's quickstart, run as it is written against a real server, so it stays true.

import assert from "node:assert/strict";
import { readFile, writeFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

import { startServer } from "./support.js";

const here = path.dirname(fileURLToPath(import.meta.url));
let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.close();
});

/** The ```ts blocks of the README section that starts with `heading`. */
async function examples(heading) {
  const readme = await readFile(path.join(here, "..", "README.md"), "utf8");
  const section = readme.split(/^## /m).find((part) => part.startsWith(heading));
  assert.ok(section, `README has no section ${heading}`);
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);
}

test("the README's quickstart runs and prints what it promises", async () => {
  const blocks = await examples("Quickstart");
  assert.equal(blocks.length, 2);
  const dist = pathToFileURL(path.join(here, "..", "dist", "index.js")).href;
  // The first block imports the package; the second continues it with another user.
  const program = blocks
    .join("\n")
    .replace('"@powermemo/client"', JSON.stringify(dist))
    .replace('"http://127.0.0.1:8019"', JSON.stringify(server.url))
    .replace('"pm_..."', JSON.stringify(server.apiKey));
  const dir = await mkdtemp(path.join(tmpdir(), "powermemo-readme-"));
  try {
    const file = path.join(dir, "quickstart.mjs");
    await writeFile(file, program);
    const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 60_000 });
    const lines = stdout.trim().split("\n");
    assert.equal(lines[0], "DONE");
    assert.deepEqual(lines.slice(1, 3).sort(), ["contact_info city Lyon", "work title chemistry teacher"]);
    assert.match(lines[3], /^\d+ <memory>$/);
    assert.ok(lines.includes("</memory>"));
    assert.equal(lines.at(-1), "[ 'chemistry teacher' ]");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
