// Building DOM nodes. User text only ever becomes a Text node or a property value, never markup:
// nothing here (or anywhere in the client) assigns innerHTML, and the page's Content-Security-Policy
// requires Trusted Types, so an attempt to would throw instead of rendering.

/** h("li", {class: "task", dataset: {id: 3}}, "text", childNode, [more]) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) throw new Error(`h(): handlers are added with addEventListener, not ${key}`);
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "text") el.textContent = String(value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/**
 * Show a problem's field errors beside their fields: each `errors[i].field` ("title",
 * "recurrence.rrule", "reminders.0.before") goes to the element of the form whose data-error-for is
 * the field or its longest dotted prefix; what matches nothing goes to data-error-for="*".
 */
export function showErrors(form, problem) {
  clearErrors(form);
  const slots = new Map($$("[data-error-for]", form).map((el) => [el.dataset.errorFor, el]));
  const messages = new Map();
  const errors = problem.errors && problem.errors.length ? problem.errors : [{ field: "*", message: problem.message }];
  for (const { field, message } of errors) {
    let key = String(field);
    while (key && !slots.has(key)) key = key.includes(".") ? key.slice(0, key.lastIndexOf(".")) : "";
    if (!key) key = "*";
    const list = messages.get(key) || [];
    list.push(key === "*" && field !== "*" ? `${field}: ${message}` : message);
    messages.set(key, list);
  }
  let first = null;
  for (const [key, list] of messages) {
    const slot = slots.get(key) || slots.get("*");
    if (!slot) continue;
    slot.textContent = list.join(" ");
    const control = slot.id ? form.querySelector(`[aria-describedby~="${slot.id}"]`) : null;
    if (control) {
      control.setAttribute("aria-invalid", "true");
      first = first || control;
    }
  }
  (first || slots.get("*"))?.focus?.();
  return first;
}

export function clearErrors(form) {
  for (const el of $$("[data-error-for]", form)) el.textContent = "";
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
}
