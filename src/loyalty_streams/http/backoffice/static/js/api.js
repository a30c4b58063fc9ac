// Calls to the worker's API, with the signed-in user's bearer token.
//
// The page is served at <worker>/backoffice/, so the API is one level up: relative URLs keep
// working behind a proxy that serves the workers under a path of its own. Every answer is JSON
// (errors are {"error": "..."}); a call resolves with the status and the body whatever the
// status, because 202, 409 and 403 are answers the page shows as they are.

const ROOT = new URL("../", document.baseURI);
let token = null;
let onUnauthorized = () => {};

export function useToken(value) {
  token = value && value.replace(/\s+/g, "");
}

/** What to do when the API answers 401 (the token expired or was refused). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/** The URL of an API path ("loyalty/audit") with its query (empty values left out). */
export function url(path, query = {}) {
  const target = new URL(path.replace(/^\//, ""), ROOT);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(name, value);
  }
  return target;
}

/** A path segment: an id put in a path as it is, every reserved character escaped. */
export function segment(id) {
  return encodeURIComponent(id);
}

/**
 * One call: `{status, body}`, `body` the JSON answer (or `{error}` with the text when the answer
 * is not JSON). Rejects only when the request cannot be made or the worker cannot be reached:
 * every caller must end its "pending" state then too.
 */
export async function call(method, path, { query = {}, body, open = false, as = "json", quiet = false } = {}) {
  const headers = {};
  if (!open && token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let reply;
  try {
    reply = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    throw new Error(`the worker cannot be reached (${error.message})`);
  }
  if (as === "text" && reply.ok) return { status: reply.status, body: await reply.text() };
  const text = await reply.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { error: text.slice(0, 500) || reply.statusText };
  }
  if (reply.status === 401 && !open && !quiet) onUnauthorized(parsed.error || "the token was refused");
  return { status: reply.status, body: parsed };
}

export const get = (path, query, options = {}) => call("GET", path, { query, ...options });

/** The error message of an answer that is not a success: "403: marketing_manager may not ...". */
export function problem(answer) {
  const message = answer.body && (answer.body.error || answer.body.detail);
  return `${answer.status}: ${message || "no detail"}`;
}
