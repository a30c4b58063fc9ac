// The signed-in user: their token, kept for this browser tab only (sessionStorage), and what the
// page reads from it for display. The claims are decoded, not verified: the API verifies the
// token on every call and is the only authority on what it allows.
//
// What a role may do is read from the API's own OpenAPI document (open, at /openapi.json): each
// operation's description starts "Roles: a, b; ...", written from the same grants the API
// enforces. The page hides what the user's roles cannot do; the API still refuses it.

import { get } from "./api.js";

const KEY = "loyalty-backoffice.token";

export function decodeClaims(token) {
  const parts = String(token).replace(/\s+/g, "").split(".");
  if (parts.length !== 3) throw new Error("a token has three parts separated by dots");
  const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  let claims;
  try {
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    claims = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error("its payload is not JSON in base64url");
  }
  if (typeof claims !== "object" || claims === null) throw new Error("its payload is not an object");
  return {
    subject: String(claims.sub ?? "?"),
    roles: Array.isArray(claims.roles) ? claims.roles.map(String) : [],
    brands: Array.isArray(claims.brands) ? claims.brands.map(String) : [],
    expires: Number.isInteger(claims.exp) ? new Date(claims.exp * 1000) : null,
  };
}

export function stored() {
  const token = sessionStorage.getItem(KEY);
  return token && token.replace(/\s+/g, "");
}

export function store(token) {
  sessionStorage.setItem(KEY, token.replace(/\s+/g, ""));
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

/** Which roles each operation of the API allows: "METHOD /path" -> Set of roles. */
export async function grants() {
  const answer = await get("openapi.json", {}, { open: true });
  const found = new Map();
  if (answer.status !== 200) return { found, document: null };
  for (const [path, methods] of Object.entries(answer.body.paths || {})) {
    for (const [method, operation] of Object.entries(methods)) {
      const roles = /^Roles: ([^;]*)/.exec(operation.description || "");
      found.set(`${method.toUpperCase()} ${path}`, new Set(roles ? roles[1].split(/,\s*/) : []));
    }
  }
  return { found, document: answer.body };
}

export class User {
  constructor(token, claims, allowed, document) {
    this.token = token;
    this.claims = claims;
    this.allowed = allowed;
    this.document = document;
  }

  /** Whether the user's roles may call `METHOD /path` (a path as the OpenAPI document names it). */
  may(operation) {
    const roles = this.allowed.get(operation);
    return Boolean(roles) && this.claims.roles.some((role) => roles.has(role));
  }

  /** Whether the API has the operation at all (a worker of an older release may not). */
  offers(operation) {
    return this.allowed.has(operation);
  }

  get allBrands() {
    return this.claims.brands.includes("*");
  }
}
