// Types of the server's schema and of this client's documents, from the committed
// schema.graphql (exported from the server's code), so regenerating is `npm run codegen`.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/documents.ts"],
  generates: {
    "src/generated/graphql.ts": {
      plugins: ["typescript", "typescript-operations"],
      config: {
        scalars: { DateTime: "string", JSON: "unknown" },
        enumsAsTypes: true,
        useTypeImports: true,
        avoidOptionals: { field: true, inputValue: false, object: false },
        skipTypename: false,
        strictScalars: true,
      },
    },
  },
  // Codegen fails on a document the schema does not validate: the build is the check.
  ignoreNoDocuments: false,
};

export default config;
