// One line for each kind of output a player's history (or a command's answer) holds.

import { money, points, times } from "./format.js";

export const HISTORY_TYPES = [
  "PointsAccrued", "PointsReversed", "CancellationRefused", "LevelChanged", "RedemptionHeld",
  "PointsRedeemed", "RedemptionReleased", "PointsAdjusted", "PointsExpired", "CashbackAwarded",
  "TierRewardGranted", "BirthdayGiftGranted", "DailyRewardGranted", "MonthlyBonusGranted",
  "StoreBonusGranted", "CommandRejected", "AuditEntry",
];

const LABELS = {
  PointsAccrued: "Points accrued", PointsReversed: "Points reversed",
  CancellationRefused: "Cancellation refused", LevelChanged: "Level changed",
  RedemptionHeld: "Redemption held", PointsRedeemed: "Points redeemed",
  RedemptionReleased: "Redemption released", PointsAdjusted: "Points adjusted",
  PointsExpired: "Points expired", CashbackAwarded: "Cashback", TierRewardGranted: "Tier-up reward",
  BirthdayGiftGranted: "Birthday gift", DailyRewardGranted: "Daily reward",
  MonthlyBonusGranted: "Monthly bonus", StoreBonusGranted: "Store bonus",
  CommandRejected: "Command refused", AuditEntry: "Operator's command",
};

function nonzero(text) {
  return text !== undefined && text !== null && !/^0*(\.0*)?$/.test(String(text));
}

export function label(type) {
  return LABELS[type] || type;
}

function coins(row) {
  const parts = [];
  if (row.gc !== undefined && row.gc !== "0" && row.gc !== "0.00") parts.push(money(row.gc, "GC"));
  if (row.sc !== undefined && row.sc !== "0" && row.sc !== "0.00") parts.push(money(row.sc, "SC"));
  return parts.join(" + ") || "nothing";
}

/** {change, text}: the points the row moved (signed, or "" when none) and what happened. */
export function describe(row) {
  const signed = (value, sign) => points(`${sign}${value}`, { signed: true });
  switch (row.type) {
    case "PointsAccrued":
      return { change: signed(row.points, ""),
               text: `bet ${money(row.amount, row.currency)} on ${row.game_category} at ${row.factors?.level ?? "?"}` +
                     ` ${times(row.factors?.level_multiplier ?? "1")}` +
                     (row.factors?.promotions?.length ? `, promotions ${row.factors.promotions.join(", ")}` : "") };
    case "PointsReversed":
      return { change: signed(row.points_reversed, "-"),
               text: `bet ${row.bet_id} cancelled (${row.reason}): ${money(row.amount, row.currency)}` +
                     (nonzero(row.points_owed) ? `, ${points(row.points_owed)} owed from the held points` : "") +
                     (nonzero(row.points_unrecovered) ? `, ${points(row.points_unrecovered)} unrecovered` : "") };
    case "CancellationRefused":
      return { change: "", text: `cancellation of bet ${row.bet_id} refused: ${row.code ?? ""} ${row.reason ?? ""}`.trim() };
    case "LevelChanged":
      return { change: "", text: `${row.from_level} → ${row.to_level} (${row.direction}): ${row.reason}` };
    case "RedemptionHeld":
      return { change: `${signed(row.points, "-")} (held)`,
               text: `redemption ${row.redemption_id} held: ${points(row.points)} points for ${money(row.value, row.currency)}` };
    case "PointsRedeemed":
      return { change: "", text: `redemption ${row.redemption_id} confirmed: ${points(row.points)} held points for ${money(row.value, row.currency)}` };
    case "RedemptionReleased":
      return { change: signed(row.points, ""), text: `redemption ${row.redemption_id} released (${row.reason})` };
    case "PointsAdjusted":
      return { change: signed(row.points, row.direction === "debit" ? "-" : ""),
               text: `${row.direction} by ${row.actor}: ${row.reason}` };
    case "PointsExpired":
      return { change: signed(row.points, "-"), text: `expired after inactivity since ${row.inactive_since}` };
    case "CashbackAwarded":
      return { change: "", text: `cashback for ${row.day} at ${row.level}: ${money(row.amount, row.currency)}` +
                                 ` (${row.percent} % of NGR ${money(row.ngr, row.currency)}${row.capped ? ", capped" : ""})` };
    case "TierRewardGranted":
      return { change: "", text: `tier-up reward for ${row.level}: ${coins(row)}` };
    case "BirthdayGiftGranted":
      return { change: "", text: `birthday gift ${row.year ?? ""}: ${coins(row)}` };
    case "DailyRewardGranted":
      return { change: "", text: `daily reward, streak day ${row.streak} at ${row.level} ${times(row.multiplier)}: ${coins(row)}` };
    case "MonthlyBonusGranted":
      return { change: "", text: `monthly bonus ${row.month ?? ""}: ${coins(row)}` };
    case "StoreBonusGranted":
      return { change: "", text: `store bonus at ${row.level} ${times(row.multiplier ?? "1")}: ` +
                                 `${coins({ gc: row.bonus_gc, sc: row.bonus_sc })} on package ${row.package_id} (${coins(row)})` };
    case "CommandRejected":
      return { change: "", text: `${row.command_type ?? "command"} refused: ${row.code} — ${row.reason}` };
    case "AuditEntry":
      return { change: "", text: `${row.action} ${row.outcome} by ${row.actor}: ${row.reason}` };
    default:
      return { change: "", text: "" };
  }
}
