// Shared by the pages: the token, fetching JSON, formatting. Data goes into the page as text only.
// Every API request carries the token (reads too). A long value comes cut: the object holding
// it names the field in its "truncated" map, with the ref that fetches it whole.
"use strict";

const durable = (() => {
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {  // the address `durable ui` printed: keep the token, hide it
    localStorage.setItem("durable-token", params.get("token"));
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }

  function token() { return localStorage.getItem("durable-token") || ""; }

  async function getJSON(url) {  // the answer; an Error whose .status is the HTTP status if not ok
    const response = await fetch(url, { cache: "no-store", headers: { "X-Durable-Token": token() } });
    const body = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), { status: response.status });
    return body;
  }

  // What a page shows instead of its panels when what it names cannot be shown: not found
  // (404), a journal that cannot be read (422), or any other answer; the message says why.
  function unavailable(what, error) {
    const title = error.status === 404 ? `No such ${what}` : error.status === 422
      ? `This ${what}'s journal cannot be read` : `Could not read this ${what}`;
    return el("div", { class: "notice bad unavailable" }, el("strong", {}, title), el("div", {}, error.message));
  }

  async function postJSON(url, data) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Durable-Token": token() },
      body: JSON.stringify(data),
    });
    const body = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "style") node.style.cssText = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function when(moment) {  // epoch seconds or ISO text -> local time
    if (moment === null || moment === undefined || moment === "") return "";
    const date = typeof moment === "number" ? new Date(moment * 1000) : new Date(moment);
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  function whenShort(moment) {  // today's moments without their date
    if (moment === null || moment === undefined || moment === "") return "";
    const date = typeof moment === "number" ? new Date(moment * 1000) : new Date(moment);
    const today = new Date().toDateString() === date.toDateString();
    return today ? date.toLocaleTimeString() : when(moment);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
    if (minutes < 48 * 60) return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
    return Math.floor(minutes / 1440) + " d " + Math.floor((minutes % 1440) / 60) + " h";
  }

  function json(value, indent) { return JSON.stringify(value, null, indent); }

  function short(value, width = 80) {
    const text = json(value);
    if (text === undefined) return "";
    return text.length <= width ? text : text.slice(0, width - 1) + "…";
  }

  function cutRef(owner, field) { return owner && owner.truncated ? owner.truncated[field] : undefined; }

  function valueText(owner, field, indent) {  // a value as JSON, or the start the server sent
    return cutRef(owner, field) ? owner[field] + "…" : json(owner[field], indent);
  }

  function shortValue(owner, field, width = 80) {
    const text = cutRef(owner, field) ? owner[field] + "…" : json(owner[field]);
    if (text === undefined) return "";
    return text.length <= width ? text : text.slice(0, width - 1) + "…";
  }

  function textOf(owner, field) {  // a text (a name, a message), marked if cut
    const text = owner[field];
    if (text === null || text === undefined) return "";
    return cutRef(owner, field) ? text + "…" : String(text);
  }

  function valueURL(id, ref) {
    return "/api/workflows/" + encodeURIComponent(id) + "/values/" + ref.split("/").map(encodeURIComponent).join("/");
  }

  async function download(id, ref) {  // one whole value, saved as a JSON file
    const response = await fetch(valueURL(id, ref), { cache: "no-store", headers: { "X-Durable-Token": token() } });
    if (!response.ok) {
      const body = await response.json().catch(() => ({ error: response.statusText }));
      throw new Error(body.error || response.statusText);
    }
    const address = URL.createObjectURL(await response.blob());
    const link = el("a", { href: address, download: id + "-" + ref.replaceAll("/", "-") + ".json" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(address), 60_000);
  }

  function wholeButton(id, owner, field) {  // null unless the value came cut
    const ref = cutRef(owner, field);
    if (!ref) return null;
    const button = el("button", { class: "whole", "data-ref": ref, title: "The value is longer than shown: save it whole as JSON" }, "whole value ↓");
    button.addEventListener("click", async (event) => {
      event.stopPropagation();
      button.disabled = true;
      try { await download(id, ref); button.title = "Saved."; }
      catch (error) { button.textContent = "could not fetch it: " + error.message; }
      finally { button.disabled = false; }
    });
    return button;
  }

  const stateClass = {
    "running": "running", "sleeping": "sleeping", "waiting for event": "waiting",
    "completed": "completed", "failed": "failed", "cancelled": "cancelled",
  };
  function badge(state) { return el("span", { class: "badge " + (stateClass[state] || "") }, state); }

  function workflowURL(id) { return "/workflows/" + encodeURIComponent(id); }

  // Schedules (their list and page): fire times come as ISO text in the schedule's time zone.
  function scheduleURL(name) { return "/schedules/" + encodeURIComponent(name); }

  function fireTime(iso) { return iso ? String(iso).replace("T", " ") : ""; }

  function interval(seconds) {  // a schedule's `every`, as it was most likely written
    for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "min"]]) {
      if (seconds >= size && seconds % size === 0) return seconds / size + " " + unit;
    }
    return seconds + " s";
  }

  function scheduleWhen(schedule) {
    const when = schedule.cron !== null ? `cron "${schedule.cron}"` : "every " + interval(schedule.every);
    return when + " · " + schedule.timezone + (schedule.jitter ? " · jitter " + interval(schedule.jitter) : "");
  }

  const scheduleClass = { active: "completed", paused: "cancelled", deleted: "" };
  function scheduleBadge(state) { return el("span", { class: "badge " + (scheduleClass[state] ?? "") }, state); }

  const outcomeClass = { completed: "completed", failed: "failed", cancelled: "cancelled" };
  function outcomeBadge(outcome) { return el("span", { class: "badge " + (outcomeClass[outcome] || "") }, outcome); }

  return {
    token, getJSON, postJSON, unavailable, el, when, whenShort, duration, json, short, badge, workflowURL,
    cutRef, valueText, shortValue, textOf, wholeButton,
    scheduleURL, fireTime, interval, scheduleWhen, scheduleBadge, outcomeBadge,
  };
})();
