// Alliance Gateway's GraphiQL page: asks for a bearer token (or offers the demo's), checks it, then
// mounts GraphiQL with the token on every request, so the schema loads as soon as there is one.
// Everything it loads comes from this gateway (see gateway/graphiql_page.py).
(function () {
  "use strict";
  const body = document.body;
  const endpoint = body.dataset.endpoint;
  const demoTokensUrl = body.dataset.demoTokens;
  const defaultQuery = body.dataset.defaultQuery;
  const STORAGE_KEY = "alliance-gateway.token";
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  const demoSelect = document.getElementById("demo-tokens");
  const who = document.getElementById("who");
  const problem = document.getElementById("token-error");
  let root = null;

  function claims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const json = decodeURIComponent(
        Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
      );
      return JSON.parse(json);
    } catch (e) {
      return null;
    }
  }

  function describe(token) {
    const c = claims(token) || {};
    const roles = Array.isArray(c.roles) ? c.roles.join(" ") : String(c.roles || "");
    return [roles, c.hospital, c.sub].filter(Boolean).join(" · ");
  }

  async function check(token) {
    // One small query: a token the gateway refuses says why, in the gateway's words.
    const response = await fetch(endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        authorization: "Bearer " + token,
      },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    if (response.ok) return null;
    try {
      const answer = await response.json();
      return (answer.errors && answer.errors[0] && answer.errors[0].message) || response.statusText;
    } catch (e) {
      return "HTTP " + response.status;
    }
  }

  function mount(token) {
    const wsUrl = new URL(endpoint, window.location.href);
    wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
    const authorization = "Bearer " + token;
    const fetcher = GraphiQL.createFetcher({
      url: endpoint,
      headers: { Authorization: authorization },
      subscriptionUrl: wsUrl.toString(),
      wsConnectionParams: { authorization: authorization },
    });
    if (root === null) {
      const container = document.getElementById("graphiql");
      container.textContent = "";
      root = ReactDOM.createRoot(container);
    }
    // A new key for a new token: GraphiQL mounts afresh and fetches the schema with it.
    root.render(
      React.createElement(GraphiQL, {
        key: token,
        fetcher: fetcher,
        defaultQuery: defaultQuery,
        defaultEditorToolsVisibility: true,
        isHeadersEditorEnabled: true,
      }),
    );
  }

  async function use(token) {
    token = (token || "").trim().replace(/^bearer\s+/i, "");
    problem.textContent = "";
    if (!token) {
      problem.textContent = "Paste a token first.";
      return;
    }
    const refused = await check(token);
    if (refused !== null) {
      problem.textContent = refused;
      return;
    }
    sessionStorage.setItem(STORAGE_KEY, token);
    who.textContent = describe(token);
    input.value = "";
    input.placeholder = "another token (the current one is kept until this one checks out)";
    mount(token);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    use(input.value);
  });
  demoSelect.addEventListener("change", function () {
    if (demoSelect.value) use(demoSelect.value);
  });

  async function offerDemoTokens() {
    if (!demoTokensUrl) return;
    const response = await fetch(demoTokensUrl, { headers: { accept: "application/json" } });
    if (!response.ok) return;
    const tokens = await response.json();
    const first = document.createElement("option");
    first.value = "";
    first.textContent = "or a demo token…";
    demoSelect.append(first);
    for (const t of tokens) {
      const option = document.createElement("option");
      option.value = t.token;
      option.textContent = t.role + (t.member ? " · " + t.member : "");
      demoSelect.append(option);
    }
    demoSelect.hidden = false;
  }

  offerDemoTokens();
  const kept = sessionStorage.getItem(STORAGE_KEY);
  if (kept) use(kept);
})();
