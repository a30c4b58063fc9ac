// The back office: sign in with a token, then the screens (players, programmes, what-if, audit),
// one at a time, chosen by the address's fragment (#/players, ...).

import { get, useToken, whenUnauthorized } from "./api.js";
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
  useToken(token);
  context.user = new User(token, claims, found, document);
  context.brands = await brandsOf(context.user);
  store(token);
  showUser(context.user);
  if (!quiet) location.hash = location.hash && location.hash !== "#/sign-in" ? location.hash : "#/players";
  route();
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
  const name = context.user ? (SCREENS[wanted] ? wanted : "players") : "sign-in";
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
    const token = $("#token").value.trim();
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
