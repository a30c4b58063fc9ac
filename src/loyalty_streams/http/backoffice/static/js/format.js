// Numbers and times for people, exactly as the API gives them.
//
// Amounts and points are decimal strings in the API ("5250.00", "239.70200", "-80"). They are
// formatted as text: the digits are grouped and the fraction kept whole (never converted to a
// float, so nothing is rounded). Money takes its currency's symbol or code where the locale puts
// it (Intl, for the placement only); the sweepstakes coins SC and GC, which are no ISO currency,
// follow the amount as a code.

const LOCALE = "en";
const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;
const COINS = new Set(["SC", "GC"]);

/** "1234567.8900" -> "1,234,567.8900"; anything that is not a decimal string is returned as it is. */
export function decimal(text, { minPlaces = 0, signed = false } = {}) {
  if (text === null || text === undefined) return "—";
  const found = DECIMAL.exec(String(text).trim());
  if (!found) return String(text);
  const [, sign, whole, fraction = ""] = found;
  const digits = whole.replace(/^0+(?=\d)/, "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const places = fraction.padEnd(minPlaces, "0");
  const zero = /^0*$/.test(whole + fraction);
  const minus = sign === "-" && !zero ? "−" : "";
  const plus = signed && sign !== "-" && !zero ? "+" : "";
  return `${minus}${plus}${digits}${places ? "." + places : ""}`;
}

/** Points: grouped, exact. */
export function points(text, options = {}) {
  return decimal(text, options);
}

const currencyParts = new Map();

function partsOf(currency, negative) {
  const key = `${currency}:${negative}`;
  if (!currencyParts.has(key)) {
    let parts = null;
    try {
      const format = new Intl.NumberFormat(LOCALE, { style: "currency", currency });
      parts = { places: format.resolvedOptions().minimumFractionDigits,
                parts: format.formatToParts(negative ? -1 : 1) };
    } catch {
      parts = null; // not an ISO 4217 code
    }
    currencyParts.set(key, parts);
  }
  return currencyParts.get(key);
}

/** Money in `currency`: "5250.5" EUR -> "€5,250.50", "-80" SEK -> "-SEK 80.00", "10" SC -> "10.00 SC". */
export function money(text, currency) {
  if (text === null || text === undefined) return "—";
  const found = DECIMAL.exec(String(text).trim());
  if (!found || !currency) return found ? decimal(text, { minPlaces: 2 }) : String(text);
  const negative = found[1] === "-" && !/^0*$/.test(found[2] + (found[3] || ""));
  const spec = COINS.has(currency) ? null : partsOf(currency, negative);
  if (spec === null) return `${decimal(text, { minPlaces: 2 })} ${currency}`;
  const magnitude = decimal(`${found[2]}${found[3] ? "." + found[3] : ""}`, { minPlaces: spec.places });
  const [whole, fraction = ""] = magnitude.split(".");
  let out = "";
  for (const part of spec.parts) {
    if (part.type === "integer") out += whole;
    else if (part.type === "decimal") out += fraction ? "." : "";
    else if (part.type === "fraction") out += fraction;
    else if (part.type === "minusSign") out += "−";
    else out += part.value;
  }
  return out;
}

/** A multiplier: "1.1" -> "×1.1". */
export function times(text) {
  return `×${decimal(text)}`;
}

/** A percentage: "1.5" -> "1.5 %". */
export function percent(text) {
  return `${decimal(text)} %`;
}

const dateFormats = new Map();

function dateFormat(zone) {
  if (!dateFormats.has(zone)) {
    dateFormats.set(zone, new Intl.DateTimeFormat("en-CA", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    }));
  }
  return dateFormats.get(zone);
}

function fields(format, date) {
  const out = {};
  for (const part of format.formatToParts(date)) out[part.type] = part.value;
  return out;
}

/** An RFC 3339 time in `zone` (IANA, default UTC): "2026-11-29 19:11:20". */
export function when(text, zone = "UTC") {
  if (!text) return "—";
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return String(text);
  const f = fields(dateFormat(zone), date);
  return `${f.year}-${f.month}-${f.day} ${f.hour}:${f.minute}:${f.second}`;
}

/** A time in `zone` with the zone named: "2026-11-29 19:11:20 Europe/Malta". */
export function whenIn(text, zone = "UTC") {
  return text ? `${when(text, zone)} ${zone}` : "—";
}

/** The offset of `zone` from UTC at the instant `ms`, in milliseconds. */
function offsetAt(zone, ms) {
  const f = fields(dateFormat(zone), new Date(ms));
  const asUtc = Date.UTC(+f.year, +f.month - 1, +f.day, +f.hour % 24, +f.minute, +f.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** A wall time of an `<input type="datetime-local">` ("2026-12-01T00:00") read in `zone`, as
 * RFC 3339 in UTC ("2026-11-30T23:00:00.000Z"); "" for an empty input. */
export function wallToInstant(value, zone = "UTC") {
  if (!value) return "";
  const found = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d))?/.exec(value);
  if (!found) throw new Error(`not a time: ${value}`);
  const [, y, mo, d, h, mi, s = "0"] = found;
  const wall = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s);
  let instant = wall - offsetAt(zone, wall);
  instant = wall - offsetAt(zone, instant); // again, across a change of offset
  return new Date(instant).toISOString();
}

/** An RFC 3339 time as the wall time of `zone` for a datetime-local input ("2026-12-01T00:00:00"). */
export function instantToWall(text, zone = "UTC") {
  if (!text) return "";
  const f = fields(dateFormat(zone), new Date(text));
  return `${f.year}-${f.month}-${f.day}T${f.hour}:${f.minute}:${f.second}`;
}

/** A number for a chart's geometry only (never shown as the figure itself). */
export function approx(text) {
  const value = Number.parseFloat(text);
  return Number.isFinite(value) ? value : 0;
}
