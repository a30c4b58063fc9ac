// What several screens read: a brand's programme in effect (its zone, currencies and levels),
// kept for a minute, and the brand pickers.

import { get, segment } from "./api.js";
import { clear, h } from "./dom.js";

const programmes = new Map();
const KEEP_MS = 60_000;

/** The brand's programme in effect, or null when the API has none (or refuses it). */
export async function programmeOf(brand, { fresh = false } = {}) {
  const kept = programmes.get(brand);
  if (!fresh && kept && Date.now() - kept.at < KEEP_MS) return kept.programme;
  const answer = await get(`loyalty/programmes/${segment(brand)}`);
  const programme = answer.status === 200 ? answer.body : null;
  programmes.set(brand, { at: Date.now(), programme });
  return programme;
}

export function forgetProgrammes() {
  programmes.clear();
}

/** The brand's IANA zone (its days and the times the page shows), UTC when unknown. */
export function zoneOf(programme) {
  return programme?.policies?.timezone || "UTC";
}

/** Fill a <select> with the user's brands; `any` adds a first choice for "every brand". */
export function fillBrands(select, brands, { any = null } = {}) {
  const kept = select.value;
  clear(select,
    any ? h("option", { value: "" }, any) : null,
    brands.map((brand) => h("option", { value: brand }, brand)));
  if (kept && [...select.options].some((option) => option.value === kept)) select.value = kept;
}

/** The unit of a programme's level basis: its turnover currency, or VIP points. */
export function basisUnit(programme, basis) {
  return basis === "turnover" ? programme?.turnover_currency || "" : "VIP points";
}
