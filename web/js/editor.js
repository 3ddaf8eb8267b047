// The task editor: create, or edit with If-Match (a 412 offers the current version). Recurrence by
// preset or raw RRULE, due date-time in a chosen zone, reminders before the due time or at a time.

import { $, $$, clear, clearErrors, h, showErrors } from "./dom.js";
import { buildRule, parseRule } from "./recurrence.js";
import { browserZone, durationToIso, instantToWall, isoToDuration, wallToRfc3339, zones } from "./time.js";

const MAX_REMINDERS = 10;

export class TaskEditor {
  constructor({ api, announce, onSaved }) {
    this.api = api;
    this.announce = announce;
    this.onSaved = onSaved;
    this.dialog = $("#editor");
    this.form = $("#editor-form");
    this.task = null; // the version being edited (null: a new task)
    this.reminderRows = 0;

    const zoneSelect = $("#e-zone");
    for (const zone of zones()) zoneSelect.append(h("option", { value: zone }, zone));

    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.save(); });
    $("#editor-cancel").addEventListener("click", () => this.dialog.close());
    $("#stale-reload").addEventListener("click", () => this.reloadCurrent());
    $("#add-reminder").addEventListener("click", () => {
      const row = this.addReminder({ before: "PT15M" });
      row?.querySelector("select")?.focus();
    });
    $("#e-reminders").addEventListener("click", (e) => {
      const button = e.target.closest("button[data-remove]");
      if (!button) return;
      button.closest("li").remove();
      this.renumberReminders();
      $("#add-reminder").focus();
    });
    $("#e-reminders").addEventListener("change", (e) => {
      if (e.target.matches("select[data-kind]")) this.showReminderKind(e.target.closest("li"));
    });
    for (const id of ["#e-preset", "#e-monthday", "#e-end", "#e-count", "#e-until"]) {
      $(id).addEventListener("input", () => this.presetChanged());
    }
    $("#e-days").addEventListener("change", () => this.presetChanged());
    $("#e-rrule").addEventListener("input", () => this.ruleTyped());
  }

  open(task = null) {
    this.task = task;
    this.fill(task);
    $("#editor-title").textContent = task ? "Edit task" : "New task";
    $("#stale").hidden = true;
    this.dialog.showModal();
    $("#e-title").focus();
  }

  fill(task) {
    const form = this.form;
    form.reset();
    clearErrors(form);
    const zone = task ? task.timezone : browserZone();
    $("#e-title").value = task ? task.title : "";
    $("#e-description").value = task ? task.description : "";
    $("#e-priority").value = task ? task.priority : "medium";
    $("#e-tags").value = task ? task.tags.join(", ") : "";
    this.setZone(zone);
    $("#e-due").value = task && task.due_at ? instantToWall(task.due_at, zone) : "";
    const rule = parseRule(task && task.recurrence ? task.recurrence.rrule : "");
    $("#e-preset").value = rule.preset;
    this.setRuleControls(rule);
    $("#e-rrule").value = rule.rrule;
    $("#e-anchor").value = task && task.recurrence ? task.recurrence.anchor : "schedule";
    clear($("#e-reminders"));
    this.reminderRows = 0;
    for (const reminder of task ? task.reminders : []) this.addReminder(reminder, zone);
    $("#e-scope").hidden = !(task && task.series);
    this.showRecurrence();
  }

  setZone(zone) {
    const select = $("#e-zone");
    if (![...select.options].some((o) => o.value === zone)) select.append(h("option", { value: zone }, zone));
    select.value = zone;
  }

  setRuleControls(rule) {
    for (const box of $$('input[name="day"]', this.form)) box.checked = rule.days.includes(box.value);
    $("#e-monthday").value = String(rule.monthDay);
    $("#e-end").value = rule.end;
    $("#e-count").value = String(rule.count);
    $("#e-until").value = rule.until;
  }

  ruleState() {
    return {
      preset: $("#e-preset").value,
      days: $$('input[name="day"]:checked', this.form).map((el) => el.value),
      monthDay: $("#e-monthday").value,
      end: $("#e-end").value,
      count: $("#e-count").value,
      until: $("#e-until").value,
      rrule: $("#e-rrule").value,
    };
  }

  presetChanged() {
    const state = this.ruleState();
    if (state.preset !== "custom") $("#e-rrule").value = buildRule(state) || "";
    this.showRecurrence();
  }

  ruleTyped() {
    const rule = parseRule($("#e-rrule").value.trim());
    $("#e-preset").value = rule.preset === "none" ? "custom" : rule.preset;
    if (rule.preset !== "custom" && rule.preset !== "none") this.setRuleControls(rule);
    this.showRecurrence();
  }

  showRecurrence() {
    const preset = $("#e-preset").value;
    const end = $("#e-end").value;
    const preset_ = preset !== "none" && preset !== "custom";
    $("#e-days").hidden = preset !== "weekly";
    $("#e-monthday-box").hidden = preset !== "monthly";
    $("#e-repeat-details").hidden = preset === "none";
    $("#e-end").closest("div").hidden = !preset_;
    $("#e-count-box").hidden = !preset_ || end !== "count";
    $("#e-until-box").hidden = !preset_ || end !== "until";
    $("#e-rrule-box").hidden = preset === "none";
  }

  addReminder(reminder, zone = $("#e-zone").value) {
    const list = $("#e-reminders");
    if (list.children.length >= MAX_REMINDERS) {
      this.announce(`A task has at most ${MAX_REMINDERS} reminders.`);
      return null;
    }
    const n = ++this.reminderRows;
    const before = reminder.before ? isoToDuration(reminder.before) : { amount: 15, unit: "minutes" };
    const id = (part) => `rem-${n}-${part}`;
    const option = (value, text, selected) => h("option", { value, selected }, text);
    const row = h("li", { dataset: { reminder: n } },
      h("div", {},
        h("label", { for: id("kind") }, "Remind"),
        h("select", { id: id("kind"), dataset: { kind: "" } },
          option("before", "before it is due", !reminder.at),
          option("at", "at a time", Boolean(reminder.at)))),
      h("div", { class: "before" },
        h("label", { for: id("amount") }, "How long before"),
        h("input", { id: id("amount"), type: "number", min: "0", value: String(before.amount), dataset: { amount: "" } })),
      h("div", { class: "before" },
        h("label", { for: id("unit") }, "Unit"),
        h("select", { id: id("unit"), dataset: { unit: "" } },
          ...["minutes", "hours", "days"].map((u) => option(u, u, before.unit === u)))),
      h("div", { class: "at" },
        h("label", { for: id("at") }, "At (task's time zone)"),
        h("input", { id: id("at"), type: "datetime-local", dataset: { at: "" },
          value: reminder.at ? instantToWall(reminder.at, zone) : "" })),
      h("button", { type: "button", dataset: { remove: "" }, "aria-label": `Remove reminder ${n}` }, "Remove"),
      h("p", { class: "field-error", id: id("error") }));
    list.append(row);
    this.showReminderKind(row);
    this.renumberReminders();
    return row;
  }

  showReminderKind(row) {
    const at = row.querySelector("select[data-kind]").value === "at";
    for (const el of row.querySelectorAll(".before")) el.hidden = at;
    for (const el of row.querySelectorAll(".at")) el.hidden = !at;
  }

  renumberReminders() {
    // Field errors name reminders by position ("reminders.1.before"): each row's error slot follows it.
    $$("#e-reminders > li").forEach((row, i) => {
      const slot = row.querySelector(".field-error");
      slot.dataset.errorFor = `reminders.${i}`;
      for (const control of row.querySelectorAll("input, select")) control.setAttribute("aria-describedby", slot.id);
    });
  }

  /** The task as the form describes it, in the API's terms. */
  values() {
    const zone = $("#e-zone").value;
    const rrule = $("#e-preset").value === "none" ? null : $("#e-rrule").value.trim();
    return {
      title: $("#e-title").value,
      description: $("#e-description").value,
      priority: $("#e-priority").value,
      tags: $("#e-tags").value.split(",").map((t) => t.trim()).filter(Boolean),
      due_at: wallToRfc3339($("#e-due").value, zone),
      timezone: zone,
      recurrence: rrule === null ? null : { rrule, anchor: $("#e-anchor").value },
      reminders: $$("#e-reminders > li").map((row) => {
        if (row.querySelector("select[data-kind]").value === "at") {
          return { at: wallToRfc3339(row.querySelector("input[data-at]").value, zone) };
        }
        return { before: durationToIso(row.querySelector("input[data-amount]").value, row.querySelector("select[data-unit]").value) };
      }),
    };
  }

  /** Only what changed, as a merge patch: an unchanged rule must not restart a series. */
  patchFrom(task, values) {
    const same = {
      title: (a, b) => a === b,
      description: (a, b) => a === b,
      priority: (a, b) => a === b,
      tags: (a, b) => a.map((t) => t.toLowerCase()).join("\n") === b.join("\n"),
      due_at: (a, b) => (a === null ? null : Date.parse(a)) === (b === null ? null : Date.parse(b)),
      timezone: (a, b) => a === b,
      recurrence: (a, b) => JSON.stringify(a && { rrule: a.rrule.toUpperCase().replace(/^RRULE:/, ""), anchor: a.anchor })
        === JSON.stringify(b && { rrule: b.rrule, anchor: b.anchor }),
      reminders: (a, b) => JSON.stringify(a.map(normalReminder)) === JSON.stringify(b.map(normalReminder)),
    };
    const patch = {};
    for (const [field, equal] of Object.entries(same)) {
      if (!equal(values[field], task[field])) patch[field] = values[field];
    }
    return patch;
  }

  async save() {
    clearErrors(this.form);
    const values = this.values();
    const button = $("#editor-save");
    button.disabled = true;
    try {
      if (this.task) {
        const patch = this.patchFrom(this.task, values);
        if (Object.keys(patch).length) {
          const scope = this.task.series ? new FormData(this.form).get("scope") : undefined;
          await this.api.patch(`/tasks/${this.task.id}`, patch, { query: { scope }, version: this.task.version });
        }
        this.announce(`Saved “${values.title.trim()}”.`);
      } else {
        await this.api.post("/tasks", values);
        this.announce(`Created “${values.title.trim()}”.`);
      }
      this.dialog.close();
      this.onSaved();
    } catch (err) {
      if (err.status === 412) {
        $("#stale").hidden = false;
        $("#stale-reload").focus();
      } else if (err.status !== 401) {
        showErrors(this.form, err);
      }
    } finally {
      button.disabled = false;
    }
  }

  async reloadCurrent() {
    try {
      const current = await this.api.get(`/tasks/${this.task.id}`);
      this.task = current;
      this.fill(current);
      $("#stale").hidden = true;
      this.announce("Loaded the current version; your changes were not saved.");
      $("#e-title").focus();
    } catch (err) {
      if (err.status === 404) {
        this.dialog.close();
        this.announce("The task no longer exists.");
        this.onSaved();
      } else if (err.status !== 401) {
        showErrors(this.form, err);
      }
    }
  }
}

function normalReminder(r) {
  return r.at ? { at: Date.parse(r.at) } : { before: r.before };
}
