// The task list: filters, search, sort, tag counts, "load more" over the keyset cursor, and the
// actions on a task (complete, reopen, skip, snooze, delete with the instance/series choice).

import { $, clear, clearErrors, h, showErrors } from "./dom.js";
import { describeRule } from "./recurrence.js";
import { formatInstant, localToIso } from "./time.js";

const PAGE = 50;
const MAX_PAGE = 200; // the API's limit: a refresh re-reads at most this many

export class TaskList {
  constructor({ api, notify, announce, openEditor, openHistory }) {
    this.api = api;
    this.notify = notify;
    this.announce = announce;
    this.openEditor = openEditor;
    this.openHistory = openHistory;
    this.form = $("#filters");
    this.list = $("#task-list");
    this.more = $("#load-more");
    this.tagList = $("#tag-list");
    this.summary = $("#list-summary");
    this.items = [];
    this.cursor = null;
    this.generation = 0;
    this.pending = null;
    this.debounce = null;

    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.reload(); });
    this.form.addEventListener("input", (e) => this.soon(e.target.name === "q" || e.target.name === "tags" ? 300 : 0));
    this.form.addEventListener("reset", () => setTimeout(() => this.reload(), 0));
    this.more.addEventListener("click", () => this.loadMore());
    this.list.addEventListener("click", (e) => this.onAction(e));
    this.tagList.addEventListener("click", (e) => this.onTag(e));
    $("#snooze-form").addEventListener("submit", (e) => { e.preventDefault(); this.submitSnooze(); });
    $("#snooze-cancel").addEventListener("click", () => $("#snooze").close());
    $("#snooze-until").addEventListener("input", () => { $('#snooze-form input[value="until"]').checked = true; });
  }

  soon(ms) {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.reload(), ms);
  }

  query(limit) {
    const data = new FormData(this.form);
    const tags = String(data.get("tags") || "").split(",").map((t) => t.trim()).filter(Boolean);
    return {
      q: String(data.get("q") || "").trim(),
      status: data.get("status"),
      priority: data.getAll("priority").join(","),
      tags: tags.join(","),
      tag_mode: tags.length ? data.get("tag_mode") : "",
      due_after: localToIso(data.get("due_after")),
      due_before: localToIso(data.get("due_before")),
      overdue: data.get("overdue") ? "true" : "",
      sort: data.get("sort"),
      limit,
    };
  }

  /** Read the first page again (the filters changed). */
  async reload() {
    clearErrors(this.form);
    await this.fetch(PAGE, false);
  }

  /** Read what is shown again (a change arrived): same filters, as many items as are shown. */
  refresh() {
    if (this.pending) {
      this.pending.again = true;
      return this.pending.promise;
    }
    const pending = { again: false };
    pending.promise = (async () => {
      try {
        do {
          pending.again = false;
          await this.fetch(Math.min(MAX_PAGE, Math.max(PAGE, this.items.length)), true);
        } while (pending.again);
      } finally {
        this.pending = null;
      }
    })();
    this.pending = pending;
    return pending.promise;
  }

  async fetch(limit, keepFocus) {
    const generation = ++this.generation;
    try {
      const [page, tags] = await Promise.all([this.api.get("/tasks", this.query(limit)), this.api.get("/tags")]);
      if (generation !== this.generation) return; // a newer query has answered or will
      this.items = page.items;
      this.cursor = page.next_cursor;
      this.render(keepFocus);
      this.renderTags(tags);
    } catch (err) {
      if (generation === this.generation && err.status !== 401) showErrors(this.form, err);
    }
  }

  async loadMore() {
    if (!this.cursor) return;
    const generation = ++this.generation;
    try {
      const page = await this.api.get("/tasks", { ...this.query(PAGE), cursor: this.cursor });
      if (generation !== this.generation) return;
      const first = this.items.length;
      this.items = this.items.concat(page.items);
      this.cursor = page.next_cursor;
      this.render(false);
      // Keyboard users land on the first new task rather than back at the top.
      this.list.children[first]?.querySelector("button")?.focus();
    } catch (err) {
      if (err.status !== 401) showErrors(this.form, err);
    }
  }

  render(keepFocus) {
    const focusKey = keepFocus ? document.activeElement?.dataset?.focusKey : null;
    clear(this.list);
    for (const task of this.items) this.list.append(this.renderTask(task));
    this.more.hidden = !this.cursor;
    const n = this.items.length;
    this.summary.textContent = n === 0 ? "No tasks match." : `${n}${this.cursor ? "+" : ""} task${n === 1 ? "" : "s"} shown.`;
    if (focusKey) {
      const [id] = focusKey.split(":");
      const target = $(`[data-focus-key="${CSS.escape(focusKey)}"]`, this.list)
        || $(`[data-focus-key^="${CSS.escape(id)}:"]`, this.list);
      (target || $("#tasks-title")).focus?.();
    }
  }

  renderTask(task) {
    const now = Date.now();
    const overdue = task.status === "open" && task.due_at && Date.parse(task.due_at) < now;
    const button = (action, label, extra = {}) => h("button", {
      type: "button", dataset: { action, id: task.id, focusKey: `${task.id}:${action}` },
      "aria-label": `${label}: ${task.title}`, ...extra,
    }, label);
    const actions = [];
    if (task.status === "open") actions.push(button("complete", "Complete", { class: "primary" }));
    else actions.push(button("reopen", "Reopen"));
    if (task.status === "open" && task.series) actions.push(button("skip", "Skip"));
    actions.push(button("edit", "Edit"));
    if (task.status === "open") actions.push(button("snooze", "Snooze"));
    actions.push(button("history", "History"), button("delete", "Delete"));
    return h("li", { class: "task", dataset: { id: task.id, priority: task.priority, status: task.status } },
      h("h3", { class: "task-title" }, task.title),
      h("p", { class: "task-meta" },
        h("span", {}, `${task.priority} priority`),
        task.status === "completed" ? h("span", {}, task.skipped ? "skipped" : "done") : null,
        task.due_at ? h("span", { class: overdue ? "overdue" : null },
          `${overdue ? "overdue, was due" : "due"} ${formatInstant(task.due_at, task.timezone)}`) : null,
        task.recurrence ? h("span", {}, `repeats ${describeRule(task.recurrence)}`) : null,
        task.reminders.length ? h("span", {}, `${task.reminders.length} reminder${task.reminders.length === 1 ? "" : "s"}`) : null,
        task.tags.map((tag) => h("span", { class: "tag" }, `#${tag}`))),
      task.description ? h("p", { class: "task-desc" },
        task.description.length > 280 ? task.description.slice(0, 280) + "…" : task.description) : null,
      h("div", { class: "task-actions" }, actions));
  }

  renderTags(tags) {
    const chosen = new Set(String(new FormData(this.form).get("tags") || "").split(",").map((t) => t.trim().toLowerCase()).filter(Boolean));
    clear(this.tagList);
    if (!tags.length) this.tagList.append(h("li", { class: "help" }, "No tags yet."));
    for (const tag of tags) {
      this.tagList.append(h("li", {}, h("button", {
        type: "button", class: "chip", dataset: { tag: tag.name }, "aria-pressed": chosen.has(tag.name) ? "true" : "false",
        "aria-label": `${tag.name}: ${tag.count} task${tag.count === 1 ? "" : "s"}`,
      }, `${tag.name} `, h("span", { "aria-hidden": "true" }, `(${tag.count})`))));
    }
  }

  onTag(event) {
    const button = event.target.closest("button[data-tag]");
    if (!button) return;
    const input = $("#f-tags");
    const tags = input.value.split(",").map((t) => t.trim()).filter(Boolean);
    const name = button.dataset.tag;
    const i = tags.findIndex((t) => t.toLowerCase() === name);
    if (i >= 0) tags.splice(i, 1); else tags.push(name);
    input.value = tags.join(", ");
    this.reload();
  }

  task(id) {
    return this.items.find((t) => String(t.id) === String(id));
  }

  async onAction(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const task = this.task(button.dataset.id);
    if (!task) return;
    const action = button.dataset.action;
    if (action === "edit") return this.openEditor(task);
    if (action === "history") return this.openHistory(task);
    if (action === "delete") return this.confirmDelete(task);
    if (action === "snooze") return this.openSnooze(task);
    const done = { complete: "Completed", reopen: "Reopened", skip: "Skipped" }[action];
    try {
      await this.api.post(`/tasks/${task.id}/${action}`);
      this.announce(`${done} “${task.title}”.`);
      await this.refresh();
    } catch (err) {
      if (err.status !== 401) this.notify(`Could not ${action} “${task.title}”: ${err.message}`, "error");
    }
  }

  confirmDelete(task) {
    const dialog = $("#confirm-delete");
    $("#delete-what").textContent = task.series
      ? `“${task.title}” repeats. Delete only this one (the next one follows), or the whole series?`
      : `“${task.title}” will be deleted.`;
    $("#delete-series").hidden = !task.series;
    $("#delete-instance").textContent = task.series ? "Delete this one" : "Delete";
    dialog.returnValue = "cancel";
    dialog.addEventListener("close", () => this.remove(task, dialog.returnValue), { once: true });
    dialog.showModal();
    $("#delete-cancel").focus();
  }

  async remove(task, choice) {
    if (choice !== "instance" && choice !== "series") return;
    try {
      await this.api.delete(`/tasks/${task.id}`, { scope: task.series ? choice : undefined });
      this.announce(choice === "series" ? `Deleted the series “${task.title}”.` : `Deleted “${task.title}”.`);
      await this.refresh();
      $("#tasks-title").focus();
    } catch (err) {
      if (err.status !== 401) this.notify(`Could not delete “${task.title}”: ${err.message}`, "error");
    }
  }

  openSnooze(task) {
    const form = $("#snooze-form");
    clearErrors(form);
    form.reset();
    form.dataset.id = task.id;
    $("#snooze-what").textContent = `“${task.title}”`;
    $("#snooze").showModal();
    $('input[name="for"]', form).focus();
  }

  async submitSnooze() {
    const form = $("#snooze-form");
    const task = this.task(form.dataset.id) || { id: form.dataset.id, title: "" };
    const choice = new FormData(form).get("for");
    const body = choice === "until" ? { until: localToIso($("#snooze-until").value) } : { for: choice };
    try {
      const answer = await this.api.post(`/tasks/${task.id}/snooze`, body);
      $("#snooze").close();
      this.announce(`You will be reminded of “${task.title}” at ${formatInstant(answer.remind_at)}.`);
    } catch (err) {
      if (err.status !== 401) showErrors(form, err);
    }
  }

  clearAll() {
    this.items = [];
    this.cursor = null;
    clear(this.list);
    clear(this.tagList);
    this.summary.textContent = "";
    this.more.hidden = true;
  }
}
