// Recurrence presets ↔ RFC 5545 RRULE values. A rule no preset writes stays a custom rule.

const WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"];
export const DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

/**
 * {preset, days, monthDay, end, count, until, rrule} → the RRULE value, or null for "none".
 * end: "never" | "count" (COUNT=count) | "until" (UNTIL=date, read by the server in the task's zone).
 */
export function buildRule(r) {
  if (r.preset === "none") return null;
  if (r.preset === "custom") return (r.rrule || "").trim();
  const parts = {
    daily: ["FREQ=DAILY"],
    weekdays: ["FREQ=WEEKLY", `BYDAY=${WEEKDAYS.join(",")}`],
    weekly: ["FREQ=WEEKLY", ...(r.days && r.days.length ? [`BYDAY=${DAYS.filter((d) => r.days.includes(d)).join(",")}`] : [])],
    monthly: ["FREQ=MONTHLY", `BYMONTHDAY=${Math.min(31, Math.max(1, Number(r.monthDay) || 1))}`],
    lastday: ["FREQ=MONTHLY", "BYMONTHDAY=-1"],
    yearly: ["FREQ=YEARLY"],
  }[r.preset];
  if (!parts) return null;
  if (r.end === "count") parts.push(`COUNT=${Math.max(1, Math.floor(Number(r.count) || 1))}`);
  if (r.end === "until" && /^\d{4}-\d{2}-\d{2}$/.test(r.until || "")) parts.push(`UNTIL=${r.until.replace(/-/g, "")}`);
  return parts.join(";");
}

/** The preset a rule was written with, or {preset: "custom", rrule}. */
export function parseRule(rrule) {
  const base = { preset: "none", days: [], monthDay: 1, end: "never", count: 10, until: "", rrule: rrule || "" };
  if (!rrule) return base;
  const parts = new Map();
  for (const item of rrule.toUpperCase().split(";")) {
    const [name, value] = item.split("=");
    if (!name || value === undefined || parts.has(name)) return { ...base, preset: "custom" };
    parts.set(name, value);
  }
  const out = { ...base };
  if (parts.has("COUNT")) {
    out.end = "count";
    out.count = Number(parts.get("COUNT"));
    parts.delete("COUNT");
  } else if (parts.has("UNTIL")) {
    const m = /^(\d{4})(\d{2})(\d{2})$/.exec(parts.get("UNTIL"));
    if (!m) return { ...base, preset: "custom" };
    out.end = "until";
    out.until = `${m[1]}-${m[2]}-${m[3]}`;
    parts.delete("UNTIL");
  }
  if (parts.has("INTERVAL") && parts.get("INTERVAL") === "1") parts.delete("INTERVAL");
  const freq = parts.get("FREQ");
  const byday = parts.get("BYDAY");
  const bymonthday = parts.get("BYMONTHDAY");
  const only = (...names) => [...parts.keys()].every((k) => names.includes(k));
  if (freq === "DAILY" && only("FREQ")) return { ...out, preset: "daily" };
  if (freq === "YEARLY" && only("FREQ")) return { ...out, preset: "yearly" };
  if (freq === "WEEKLY" && only("FREQ", "BYDAY")) {
    const days = byday ? byday.split(",") : [];
    if (days.every((d) => DAYS.includes(d))) {
      if (days.length === 5 && WEEKDAYS.every((d) => days.includes(d))) return { ...out, preset: "weekdays" };
      return { ...out, preset: "weekly", days };
    }
  }
  if (freq === "MONTHLY" && only("FREQ", "BYMONTHDAY") && bymonthday !== undefined) {
    if (bymonthday === "-1") return { ...out, preset: "lastday" };
    const day = Number(bymonthday);
    if (Number.isInteger(day) && day >= 1 && day <= 31) return { ...out, preset: "monthly", monthDay: day };
  }
  return { ...base, preset: "custom" };
}

const DAY_NAMES = { MO: "Mon", TU: "Tue", WE: "Wed", TH: "Thu", FR: "Fri", SA: "Sat", SU: "Sun" };

/** A short human description of a task's recurrence ("every weekday", "monthly on day 15"). */
export function describeRule(recurrence) {
  if (!recurrence) return "";
  const r = parseRule(recurrence.rrule);
  let text = {
    daily: "every day",
    weekdays: "every weekday",
    weekly: `weekly${r.days.length ? " on " + r.days.map((d) => DAY_NAMES[d]).join(", ") : ""}`,
    monthly: `monthly on day ${r.monthDay}`,
    lastday: "on the last day of each month",
    yearly: "every year",
    custom: everyN(recurrence.rrule) || recurrence.rrule,
  }[r.preset] || recurrence.rrule;
  if (r.preset !== "custom") {
    if (r.end === "count") text += `, ${r.count} times`;
    if (r.end === "until") text += `, until ${r.until}`;
  }
  if (recurrence.anchor === "completion") text += " (from completion)";
  return text;
}

/** "every 3 days" for a rule that is only FREQ and INTERVAL; null otherwise. */
function everyN(rrule) {
  const m = /^FREQ=(HOURLY|DAILY|WEEKLY|MONTHLY|YEARLY);INTERVAL=(\d+)$/.exec(String(rrule).toUpperCase());
  if (!m) return null;
  const unit = { HOURLY: "hours", DAILY: "days", WEEKLY: "weeks", MONTHLY: "months", YEARLY: "years" }[m[1]];
  return `every ${m[2]} ${unit}`;
}
