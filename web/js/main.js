// The web client's entry: sign-in, the views, and the live feed that keeps them current.

import { Api } from "./api.js";
import { $, $$, clearErrors, h, showErrors } from "./dom.js";
import { TaskEditor } from "./editor.js";
import { LiveFeed } from "./live.js";
import { AuditView, HistoryDialog, SettingsView } from "./panels.js";
import { claimsOf, forgetToken, loadToken, rolesOf, saveToken } from "./session.js";
import { TaskList } from "./tasks.js";
import { formatInstant } from "./time.js";

const DEV_SIGN_IN = document.querySelector('meta[name="todo-dev-sign-in"]')?.content === "on";

let token = null; // in memory, and in this tab's sessionStorage
let live = null;

const api = new Api(() => token, () => endSession("Your session has ended (the token expired or was refused). Sign in again."));

// -- notices: the ARIA live region for reminders and the outcome of actions --------------------

function notify(text, kind = "status", { sticky = kind !== "status" } = {}) {
  const item = h("li", { class: "notice", dataset: { kind } },
    h("p", {}, text),
    h("button", { type: "button", "aria-label": "Dismiss" }, "×"));
  item.querySelector("button").addEventListener("click", () => item.remove());
  $("#notices").append(item);
  while ($("#notices").children.length > 5) $("#notices").firstElementChild.remove();
  if (!sticky) setTimeout(() => item.remove(), 8000);
}

const announce = (text) => notify(text, "status");

function reminderArrived(message) {
  const r = message.reminder || {};
  const due = r.due_at ? ` (due ${formatInstant(r.due_at)})` : "";
  notify(`Reminder: ${r.title ?? "a task"}${due}`, "reminder");
}

// -- views --------------------------------------------------------------------------------------

const tasks = new TaskList({
  api, notify, announce,
  openEditor: (task) => editor.open(task),
  openHistory: (task) => history.open(task),
});
const editor = new TaskEditor({ api, announce, onSaved: () => tasks.refresh() });
const history = new HistoryDialog({ api, notify });
const settings = new SettingsView({ api, announce });
const audit = new AuditView({ api });

function showView(name) {
  for (const view of $$(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of $$(".nav-link")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (name === "settings") settings.load();
}

$("#nav").addEventListener("click", (e) => {
  const link = e.target.closest("button[data-view]");
  if (!link) return;
  showView(link.dataset.view);
  $("#main").focus();
});

$("#new-task").addEventListener("click", () => editor.open(null));

// -- the session ----------------------------------------------------------------------------------

async function startSession(candidate) {
  token = candidate;
  // The feed's newest seq first: the list read next includes everything up to it, and the socket
  // opened after it replays what comes later, so no change falls between the two.
  const feed = await api.get("/changes", { since: 0, limit: 1 });
  saveToken(candidate);
  const claims = claimsOf(candidate);
  const roles = rolesOf(claims);
  $("#who-name").textContent = claims.sub ? `Signed in as ${claims.sub}` : "Signed in";
  $("#nav-audit").hidden = !(roles.has("auditor") || roles.has("admin"));
  $("#nav").hidden = false;
  $("#who").hidden = false;
  showView("tasks");
  $("#main").focus();
  await tasks.reload();
  live = new LiveFeed({
    token: candidate,
    expiresAt: Number.isFinite(claims.exp) ? claims.exp : Infinity,
    since: feed.last_seq,
    onMessage: (message) => {
      if (message.type === "reminder") {
        reminderArrived(message);
        return;
      }
      tasks.refresh();
      if (history.openTaskId !== null && message.task && message.task.id === history.openTaskId) history.load(false);
    },
    onState: (state) => {
      const label = { live: "live", reconnecting: "reconnecting…", off: "offline" }[state];
      $("#live-state").dataset.state = state;
      $("#live-state").textContent = label;
      if (state === "live") tasks.refresh(); // also after a reconnect: the replay may have been empty
    },
    onRefused: () => endSession("Your session has ended (the token expired). Sign in again."),
  });
  live.start();
}

function endSession(message) {
  if (live) live.stop();
  live = null;
  token = null;
  forgetToken();
  for (const dialog of $$("dialog[open]")) dialog.close();
  tasks.clearAll();
  audit.reset();
  $("#nav").hidden = true;
  $("#who").hidden = true;
  showView("sign-in");
  const form = $("#token-form");
  form.reset();
  clearErrors(form);
  if (message) $("#token-error").textContent = message;
  $("#token-input").focus();
}

async function signIn(form, candidate) {
  try {
    await startSession(candidate);
  } catch (err) {
    token = null;
    forgetToken();
    showView("sign-in");
    $("#nav").hidden = true;
    $("#who").hidden = true;
    showErrors(form, { errors: [{ field: form.id === "token-form" ? "token" : "*", message: `Not signed in: ${err.message}` }] });
  }
}

$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  clearErrors(form);
  const candidate = $("#token-input").value.trim().replace(/^Bearer\s+/i, "");
  if (!candidate) {
    showErrors(form, { errors: [{ field: "token", message: "Paste a token first." }] });
    return;
  }
  signIn(form, candidate);
});

$("#dev-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  clearErrors(form);
  const data = new FormData(form);
  try {
    const answer = await api.request("POST", "/dev/sign-in", {
      body: { sub: String(data.get("sub") || ""), roles: data.getAll("roles") }, auth: false,
    });
    await signIn(form, answer.data.token);
  } catch (err) {
    showErrors(form, err);
  }
});

$("#sign-out").addEventListener("click", () => endSession(""));

// -- keyboard -----------------------------------------------------------------------------------

document.addEventListener("keydown", (e) => {
  // "/" jumps to the search field, as in many web apps (not while typing somewhere).
  if (e.key === "/" && !e.target.closest("input, textarea, select, dialog") && !$("#view-tasks").hidden) {
    e.preventDefault();
    $("#f-q").focus();
  }
});

// -- start ------------------------------------------------------------------------------------------

$("#dev-form").hidden = !DEV_SIGN_IN;
const saved = loadToken();
if (saved) {
  signIn($("#token-form"), saved);
} else {
  showView("sign-in");
}
