// The back office: sign in with a token, then the screens (players, programmes, what-if, audit),
// one at a time, chosen by the address's fragment (#/players, ...).

import { get, problem, segment, useToken, whenUnauthorized } from "./api.js";
import { $, $$, clear, h, say, trapFocus } from "./dom.js";
import { when } from "./format.js";
import { User, decodeClaims, forget, grants, store, stored } from "./session.js";
import * as players from "./players.js";
import * as programmes from "./programmes.js";
import * as whatIf from "./what-if.js";
import * as audit from "./audit.js";

const SCREENS = { players, programmes, "what-if": whatIf, audit };
const ROLE_NAMES = {
  loyalty_admin: "Loyalty admin",
  marketing_manager: "Marketing manager",
  service: "Service",
};

/** Screens a role may not use, by the operation they need (as the nav's data-needs names it),
 * and what the page says instead of rendering them. */
const DENIED = {
  "what-if": "Your role cannot run what-ifs.",
  audit: "Your role cannot see the audit trail.",
};

const context = { user: null, brands: [] };
const started = new Set();
let shownScreen = null;

async function signIn(token, { quiet = false } = {}) {
  let claims;
  try {
    claims = decodeClaims(token);
  } catch (error) {
    throw new Error(`This is not a token: ${error.message}.`);
  }
  if (claims.expires && claims.expires <= new Date()) {
    throw new Error(`This token expired at ${when(claims.expires.toISOString())} UTC.`);
  }
  const { found, document } = await grants();
  const user = new User(token, claims, found, document);
  useToken(token);
  let brands;
  try {
    brands = await brandsOf(user);
    await verify(brands);
  } catch (error) {
    useToken(null);
    throw error;
  }
  context.user = user;
  context.brands = brands;
  store(token);
  showUser(context.user);
  if (!quiet) location.hash = location.hash && location.hash !== "#/sign-in" ? location.hash : "#/players";
  route();
}

/** The token's claims are only decoded here: who the user is shows only once the API has taken
 * the token for one call (a programme every role may read; a 404, no programme for the brand,
 * still means the token was accepted). A 401 keeps the sign-in, with the API's reason. */
async function verify(brands) {
  const answer = await get(`loyalty/programmes/${segment(brands[0] ?? "-")}`, {}, { quiet: true });
  if (answer.status === 401) {
    throw new Error(`The API refused the token: ${answer.body?.error || "no reason given"}.`);
  }
  if (answer.status !== 200 && answer.status !== 404) {
    throw new Error(`The API did not accept the token (${problem(answer)}).`);
  }
}

/** The brands the user may pick: the token's, or every brand with a programme when it covers
 * all (as /health lists them). */
async function brandsOf(user) {
  if (!user.allBrands) return [...user.claims.brands].sort();
  const health = await get("health", {}, { open: true });
  const known = (health.body && health.body.programmes) || [];
  return [...known].sort();
}

function showUser(user) {
  const { claims } = user;
  $("#who-subject").textContent = claims.subject;
  clear($("#who-roles"), claims.roles.length
    ? claims.roles.map((role) => h("span", { class: "role" }, ROLE_NAMES[role] || role))
    : h("span", { class: "role none" }, "no role"));
  $("#who-brands").textContent = user.allBrands ? "all brands" : claims.brands.join(", ");
  $("#who-brands").title = claims.expires ? `token valid until ${when(claims.expires.toISOString())} UTC` : "";
  $("#who").hidden = false;
  $("#nav").hidden = false;
  for (const item of $$("[data-needs]", $("#nav"))) {
    item.hidden = !user.may(item.dataset.needs);
  }
}

function signOut(message) {
  forget();
  useToken(null);
  context.user = null;
  started.clear();
  for (const name of Object.keys(SCREENS)) SCREENS[name].reset?.();
  $("#who").hidden = true;
  $("#nav").hidden = true;
  location.hash = "#/sign-in";
  route();
  if (message) say($("#sign-in-error"), "error", message);
}

function route() {
  const wanted = (location.hash.replace(/^#\/?/, "").split("?")[0]) || "players";
  let name = context.user ? (SCREENS[wanted] ? wanted : "players") : "sign-in";
  // a screen the role cannot use is not rendered, even when its address is typed
  const needs = $(`#nav a[data-screen="${name}"]`)?.parentElement?.dataset.needs;
  if (context.user && needs && !context.user.may(needs)) {
    $("#denied-message").textContent = DENIED[name] || "Your role cannot use this screen.";
    name = "denied";
  }
  for (const screen of $$(".screen")) screen.hidden = screen.id !== `screen-${name}`;
  for (const link of $$("#nav a")) {
    if (link.dataset.screen === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${$(`#screen-${name} h1`).textContent} · Loyalty back office`;
  const changed = shownScreen !== null && shownScreen !== name;
  shownScreen = name;
  if (name === "sign-in") {
    $("#token").focus();
    return;
  }
  const screen = SCREENS[name];
  if (!screen) {
    if (changed) $(`#screen-${name} h1`).focus();
    return;
  }
  if (!started.has(name)) {
    started.add(name);
    screen.start(context);
  }
  screen.show?.(context);
  // a new screen: the keyboard and screen readers start at its heading
  if (changed) $(`#screen-${name} h1`).focus();
}

function boot() {
  for (const dialog of $$("dialog")) trapFocus(dialog);
  whenUnauthorized((reason) => {
    if (context.user) signOut(`The API refused the token (${reason}); sign in again.`);
  });
  $("#sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    // a token pasted across lines (or with spaces) is one token: no whitespace belongs in it
    const token = $("#token").value.replace(/\s+/g, "");
    $("#sign-in-error").hidden = true;
    if (!token) {
      say($("#sign-in-error"), "error", "Paste a token first.");
      return;
    }
    try {
      await signIn(token);
      $("#token").value = "";
    } catch (error) {
      say($("#sign-in-error"), "error", error.message);
      $("#token").focus();
    }
  });
  $("#sign-out").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", route);
  const kept = stored();
  if (kept) {
    signIn(kept, { quiet: true }).catch((error) => signOut(error.message));
  } else {
    route();
  }
}

boot();
