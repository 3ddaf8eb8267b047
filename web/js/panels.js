// A task's history, the notification settings, and the audit search with the chain verification.

import { $, clear, clearErrors, h, showErrors } from "./dom.js";
import { formatInstant, localToIso } from "./time.js";

const show = (value) => (value === null || value === undefined ? "nothing" : typeof value === "string" ? value : JSON.stringify(value));

/** What an audit entry says, as text lines. */
function describeEntry(entry) {
  const changes = entry.changes;
  if (entry.action === "task.created" && changes && typeof changes === "object") {
    return [`created “${show(changes.title)}”`];
  }
  if (entry.action === "task.deleted") return ["deleted"];
  if (entry.action.startsWith("reminder.") && changes && typeof changes === "object") {
    const verb = entry.action === "reminder.triggered" ? "reminder sent" : "reminder planned";
    return [`${verb} for ${formatInstant(changes.remind_at)}`];
  }
  if (changes && typeof changes === "object" && !Array.isArray(changes)) {
    return Object.entries(changes)
      .filter(([field]) => !["updated_at", "version"].includes(field))
      .map(([field, c]) => (c && typeof c === "object" && "from" in c
        ? `${field}: ${show(c.from)} → ${show(c.to)}`
        : `${field}: ${show(c)}`));
  }
  return [];
}

function entryItem(entry, { withTask }) {
  return h("li", {},
    h("div", {},
      h("strong", {}, entry.action), " ",
      withTask ? `task ${entry.task_id} ` : "",
      `by ${entry.actor}, ${formatInstant(entry.occurred_at)}`,
      withTask ? h("span", { class: "help" }, ` (#${entry.seq})`) : null),
    describeEntry(entry).map((line) => h("div", { class: "change" }, line)));
}

export class HistoryDialog {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.dialog = $("#history");
    this.list = $("#history-list");
    this.more = $("#history-more");
    this.task = null;
    this.cursor = null;
    $("#history-close").addEventListener("click", () => this.dialog.close());
    this.more.addEventListener("click", () => this.load(true));
    this.dialog.addEventListener("close", () => { this.task = null; });
  }

  get openTaskId() {
    return this.task ? this.task.id : null;
  }

  async open(task) {
    this.task = task;
    $("#history-title").textContent = `History of “${task.title}”`;
    clear(this.list);
    this.cursor = null;
    this.more.hidden = true;
    this.dialog.showModal();
    $("#history-close").focus();
    await this.load(false);
  }

  async load(more) {
    if (!this.task) return;
    try {
      const page = await this.api.get(`/tasks/${this.task.id}/history`, { limit: 50, cursor: more ? this.cursor : undefined });
      if (!more) clear(this.list);
      for (const entry of page.items) this.list.append(entryItem(entry, { withTask: false }));
      if (!this.list.children.length) this.list.append(h("li", { class: "help" }, "Nothing recorded yet."));
      this.cursor = page.next_cursor;
      this.more.hidden = !this.cursor;
    } catch (err) {
      if (err.status !== 401) this.notify(`Could not read the history: ${err.message}`, "error");
    }
  }
}

export class SettingsView {
  constructor({ api, announce }) {
    this.api = api;
    this.announce = announce;
    this.form = $("#settings-form");
    this.list = $("#webhook-list");
    this.rows = 0;
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.save(); });
    $("#add-webhook").addEventListener("click", () => this.addWebhook({ url: "", secret: null }).querySelector("input").focus());
    this.list.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-remove]");
      if (!button) return;
      button.closest("li").remove();
      this.renumber();
      $("#add-webhook").focus();
    });
  }

  async load() {
    clearErrors(this.form);
    // Disabled until the saved settings are in: an answer arriving after the first keystrokes would
    // otherwise overwrite them.
    this.form.setAttribute("aria-busy", "true");
    for (const control of this.form.elements) control.disabled = true;
    try {
      this.fill(await this.api.get("/me/notifications"));
    } catch (err) {
      if (err.status !== 401) showErrors(this.form, err);
    } finally {
      for (const control of this.form.elements) control.disabled = false;
      this.form.setAttribute("aria-busy", "false");
    }
  }

  fill(settings) {
    $("#s-in-app").checked = settings.in_app;
    $("#s-email").value = settings.email || "";
    clear(this.list);
    for (const webhook of settings.webhooks) this.addWebhook(webhook);
  }

  addWebhook(webhook) {
    const n = ++this.rows;
    const row = h("li", { dataset: { secret: webhook.secret || "" } },
      h("div", {},
        h("label", { for: `wh-${n}-url` }, "Webhook URL"),
        h("input", { id: `wh-${n}-url`, type: "url", value: webhook.url, placeholder: "https://example.com/hooks/todo",
          "aria-describedby": `wh-${n}-error` })),
      h("button", { type: "button", dataset: { remove: "" }, "aria-label": `Remove webhook ${n}` }, "Remove"),
      webhook.secret
        ? h("p", { class: "secret" }, "Signing secret: ", h("code", {}, webhook.secret))
        : h("p", { class: "secret" }, "A signing secret is made when you save."),
      h("p", { class: "field-error", id: `wh-${n}-error` }));
    this.list.append(row);
    this.renumber();
    return row;
  }

  renumber() {
    [...this.list.children].forEach((row, i) => { row.querySelector(".field-error").dataset.errorFor = `webhooks.${i}`; });
  }

  async save() {
    clearErrors(this.form);
    const body = {
      in_app: $("#s-in-app").checked,
      email: $("#s-email").value.trim() || null,
      webhooks: [...this.list.children].map((row) => {
        const hook = { url: row.querySelector("input").value.trim() };
        if (row.dataset.secret) hook.secret = row.dataset.secret; // keep it: a missing one is generated anew
        return hook;
      }),
    };
    try {
      this.fill(await this.api.put("/me/notifications", body));
      this.announce("Notification settings saved.");
    } catch (err) {
      if (err.status !== 401) showErrors(this.form, err);
    }
  }
}

export class AuditView {
  constructor({ api }) {
    this.api = api;
    this.form = $("#audit-form");
    this.list = $("#audit-list");
    this.more = $("#audit-more");
    this.cursor = null;
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.search(false); });
    this.more.addEventListener("click", () => this.search(true));
    $("#verify-chain").addEventListener("click", () => this.verify());
  }

  query() {
    const data = new FormData(this.form);
    return {
      user_id: String(data.get("user_id") || "").trim(),
      task_id: String(data.get("task_id") || "").trim(),
      action: data.get("action"),
      since: localToIso(data.get("since")),
      until: localToIso(data.get("until")),
      limit: 50,
    };
  }

  async search(more) {
    clearErrors(this.form);
    try {
      const page = await this.api.get("/audit", { ...this.query(), cursor: more ? this.cursor : undefined });
      if (!more) clear(this.list);
      for (const entry of page.items) this.list.append(entryItem(entry, { withTask: true }));
      if (!this.list.children.length) this.list.append(h("li", { class: "help" }, "No entries match."));
      this.cursor = page.next_cursor;
      this.more.hidden = !this.cursor;
    } catch (err) {
      if (err.status !== 401) showErrors(this.form, err);
    }
  }

  async verify() {
    const out = $("#verify-result");
    out.textContent = "Verifying…";
    try {
      const result = await this.api.get("/audit/verify");
      const chains = result.chains.length;
      out.textContent = result.ok
        ? `The trail is intact: ${result.checked} entries on ${chains} chains checked; checkpoint ${result.checkpoint.slice(0, 16)}….`
        : `The trail is broken at entry ${result.first_bad_seq} (${result.checked} entries on ${chains} chains checked).`;
    } catch (err) {
      out.textContent = err.status === 401 ? "" : `Could not verify: ${err.message}`;
    }
  }

  reset() {
    clear(this.list);
    $("#verify-result").textContent = "";
    this.more.hidden = true;
  }
}
