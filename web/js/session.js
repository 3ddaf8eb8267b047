// The signed-in person: the token lives in this tab's sessionStorage (gone with the tab, never in
// localStorage or a URL) and in memory. The claims are read for display only; the server decides.

const KEY = "todo.token";

export function loadToken() {
  try { return sessionStorage.getItem(KEY); } catch { return null; }
}

export function saveToken(token) {
  try { sessionStorage.setItem(KEY, token); } catch { /* private mode: memory only */ }
}

export function forgetToken() {
  try { sessionStorage.removeItem(KEY); } catch { /* nothing kept */ }
}

/** The JWT's payload ({sub, roles, exp}), or {} for a token that is not a readable JWT. */
export function claimsOf(token) {
  const part = String(token).split(".")[1];
  if (!part) return {};
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : {};
  } catch {
    return {};
  }
}

export function rolesOf(claims) {
  const roles = Array.isArray(claims.roles) ? claims.roles : typeof claims.roles === "string" ? claims.roles.split(" ") : [];
  return new Set(["user", ...roles.filter((r) => typeof r === "string")]);
}
