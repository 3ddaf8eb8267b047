// Wall-clock times in IANA zones, with nothing but Intl: a task's due time is written as a local
// date-time plus a zone (the zone recurrence follows), and sent as RFC 3339 with that zone's offset.

export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export function zones() {
  const known = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return [...new Set(["UTC", browserZone(), ...known])].sort((a, b) => (a === "UTC" ? -1 : b === "UTC" ? 1 : a.localeCompare(b)));
}

const formatters = new Map();
function partsFormatter(zone) {
  if (!formatters.has(zone)) {
    formatters.set(zone, new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }));
  }
  return formatters.get(zone);
}

function wallParts(zone, ms) {
  const out = {};
  for (const { type, value } of partsFormatter(zone).formatToParts(new Date(ms))) out[type] = Number(value);
  return out;
}

/** The zone's offset from UTC at an instant, in minutes (Paris in winter: 60). */
export function offsetMinutes(zone, ms) {
  const p = wallParts(zone, ms);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour % 24, p.minute, p.second);
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
}

const pad = (n, w = 2) => String(Math.abs(n)).padStart(w, "0");

/** "2026-12-01T09:00" in zone → RFC 3339 with the zone's offset then ("2026-12-01T09:00:00+01:00"). */
export function wallToRfc3339(wall, zone) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(wall || "");
  if (!m) return null;
  const naive = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  let ms = naive - offsetMinutes(zone, naive) * 60000;
  ms = naive - offsetMinutes(zone, ms) * 60000; // a second pass settles times near a change of offset
  const off = offsetMinutes(zone, ms);
  const local = new Date(ms + off * 60000);
  const sign = off < 0 ? "-" : "+";
  return `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}T` +
    `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:00${sign}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}

/** An instant (ISO string) → "YYYY-MM-DDTHH:MM" on the wall clock of zone, for datetime-local inputs. */
export function instantToWall(iso, zone) {
  if (!iso) return "";
  const p = wallParts(zone, Date.parse(iso));
  return `${p.year}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour % 24)}:${pad(p.minute)}`;
}

/** A datetime-local value read in the browser's zone → ISO instant, or null when empty. */
export function localToIso(value) {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

export function formatInstant(iso, zone) {
  if (!iso) return "";
  // dateStyle/timeStyle cannot be combined with timeZoneName: a time in another zone names its zone.
  const options = zone && zone !== browserZone()
    ? { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: zone,
        timeZoneName: "short" }
    : { dateStyle: "medium", timeStyle: "short" };
  try {
    return new Intl.DateTimeFormat(undefined, options).format(new Date(iso));
  } catch {
    return new Date(iso).toISOString();
  }
}

// ISO 8601 durations as the API writes them (format_duration): P1D, PT2H, PT1H30M.
const UNITS = { days: 1440, hours: 60, minutes: 1 };

export function durationToIso(amount, unit) {
  const n = Math.max(0, Math.floor(Number(amount) || 0));
  if (unit === "days") return `P${n}D`;
  if (unit === "hours") return `PT${n}H`;
  return `PT${n}M`;
}

export function isoToDuration(text) {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(text || "");
  if (!m) return { amount: 15, unit: "minutes" };
  const minutes = (+(m[1] || 0)) * 1440 + (+(m[2] || 0)) * 60 + (+(m[3] || 0)) + Math.ceil((+(m[4] || 0)) / 60);
  for (const [unit, size] of Object.entries(UNITS)) {
    if (minutes && minutes % size === 0) return { amount: minutes / size, unit };
  }
  return { amount: minutes, unit: "minutes" };
}
