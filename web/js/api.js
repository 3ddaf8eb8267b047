// The HTTP API, same origin. The token goes in the Authorization header only: never in a URL.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem.title || "";
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.etag = problem.etag || null;
  }
}

export class Api {
  constructor(getToken, onUnauthorized) {
    this.getToken = getToken;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, { body, query, headers = {}, contentType = "application/json", auth = true } = {}) {
    const url = new URL(path, location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
    }
    const init = { method, headers: { Accept: "application/json", ...headers }, cache: "no-store" };
    const token = auth ? this.getToken() : null;
    if (auth && !token) {
      // Signed out while work was queued (a refresh asked for during one in flight): send nothing, as
      // the server would answer 401; callers treat it as the end of the session they already left.
      throw new ApiError(401, { title: "Signed out", detail: "Sign in again." });
    }
    if (token) init.headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = contentType;
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new ApiError(0, { title: "Network error", detail: "The server did not answer; try again." });
    }
    if (response.status === 204) return { data: null, etag: response.headers.get("ETag") };
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = { title: text.slice(0, 200) }; }
    }
    if (!response.ok) {
      const error = new ApiError(response.status, { ...(data || {}), etag: response.headers.get("ETag") });
      if (response.status === 401 && auth && this.onUnauthorized) this.onUnauthorized(error);
      throw error;
    }
    return { data, etag: response.headers.get("ETag") };
  }

  get(path, query) { return this.request("GET", path, { query }).then((r) => r.data); }
  post(path, body, query) { return this.request("POST", path, { body, query }).then((r) => r.data); }
  put(path, body) { return this.request("PUT", path, { body }).then((r) => r.data); }
  patch(path, body, { query, version } = {}) {
    const headers = version === undefined ? {} : { "If-Match": `"${version}"` };
    return this.request("PATCH", path, { body, query, headers, contentType: "application/merge-patch+json" })
      .then((r) => r.data);
  }
  delete(path, query) { return this.request("DELETE", path, { query }).then((r) => r.data); }
}
