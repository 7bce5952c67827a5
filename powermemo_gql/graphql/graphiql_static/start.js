// Starts GraphiQL on /graphql with the page's config (graphql/graphiql.py writes it).
// Queries and mutations go over POST; subscriptions over graphql-transport-ws, whose
// connection_init carries the header editor's headers (our server reads Authorization there).
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("graphiql-config").textContent);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const fetcher = GraphiQL.createFetcher({
    url: config.url,
    subscriptionUrl: scheme + "//" + location.host + config.url,
    // One JSON answer per request: the server does not stream (no @defer / @stream).
    enableIncrementalDelivery: false,
  });
  const element = React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultHeaders: config.headers || undefined,
    // Headers (the token among them) stay in this page, not in the browser's storage.
    shouldPersistHeaders: false,
    isHeadersEditorEnabled: true,
    defaultEditorToolsVisibility: config.headers ? "headers" : undefined,
  });
  ReactDOM.render(element, document.getElementById("graphiql"));
})();
