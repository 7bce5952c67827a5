// GraphQL-over-HTTP conformance: graphql-http's auditServer against a running server.
// Usage: node audit.mjs <graphql url> <bearer token>; prints the results as JSON.
import { auditServer } from 'graphql-http';

const [url, token] = process.argv.slice(2);
const authorized = (input, init = {}) => {
  const headers = new Headers(init.headers ?? {});
  headers.set('Authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn: authorized });
const out = [];
for (const result of results) {
  out.push({
    id: result.id,
    name: result.name,
    status: result.status,
    reason: result.status === 'ok' ? null : result.reason,
  });
}
console.log(JSON.stringify(out));
