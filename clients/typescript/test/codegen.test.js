// The generated types are how the client's documents are checked against the server's
// schema: codegen makes them from ../../schema.graphql at every build (`npm run build`) and
// refuses a document the schema does not validate.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { generate, loadCodegenConfig } from "@graphql-codegen/cli";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUTPUT = "src/generated/graphql.ts";

async function codegenConfig() {
  const { config } = await loadCodegenConfig({ configFilePath: path.join(root, "codegen.ts") });
  return { ...config, cwd: root, silent: true };
}

test("src/generated/ is what codegen makes of the current schema.graphql", async () => {
  const files = await generate(await codegenConfig(), false);
  const made = files.find((file) => path.resolve(root, file.filename) === path.join(root, OUTPUT));
  assert.ok(made, `codegen made no ${OUTPUT}`);
  assert.equal(await readFile(path.join(root, OUTPUT), "utf8"), made.content);
});

test("codegen refuses a document the schema does not validate", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "powermemo-codegen-"));
  try {
    const documents = path.join(dir, "documents.ts");
    await writeFile(documents, 'export const BAD = /* GraphQL */ `query Bad { user(userId: "a") { bogusField } }`;\n');
    await assert.rejects(generate({ ...(await codegenConfig()), documents: [documents] }, false), (error) => {
      assert.match(String(error.message ?? error) + JSON.stringify(error.errors ?? []), /bogusField/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
