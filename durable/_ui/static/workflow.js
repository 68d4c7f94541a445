// A workflow's page: facts, outcome, a timeline of its steps (a page of them at a time),
// messages, and the send-event and cancel dialogs. Refreshes every 2 s until it ends.
"use strict";

(() => {
  const { el, getJSON, postJSON, badge, when, duration, token } = durable;
  const { valueText, shortValue, textOf, wholeButton } = durable;
  const PAGE = 200;
  const id = decodeURIComponent(location.pathname.slice("/workflows/".length));
  const FINAL = new Set(["completed", "failed", "cancelled"]);
  let first = null;  // null: follow the latest steps
  let last = null;   // the latest answer
  const open = new Set();  // the steps whose details are shown

  if (!token()) {  // (nothing can be read without it either: the reads say so below)
    for (const name of ["send-button", "cancel-button", "resume-button", "restart-button", "fork-button"]) {
      const button = document.getElementById(name);
      button.disabled = true;
      button.title = "Open the address `durable ui` printed (it carries the token).";
    }
  }

  document.title = "durable · " + id;
  document.getElementById("title").textContent = id;

  function fact(label, value) {
    return value === "" || value === null || value === undefined ? null : el("div", {}, el("span", {}, label), value);
  }

  function runnerText(w) {  // (who runs it, and who wakes a sleeper: the server says)
    if (FINAL.has(w.state)) return "";
    if (w.stalled) return el("span", { class: "error-text" }, w.runner_says);
    return w.runner_says;
  }

  // An error {type, msg, tb} held by `owner` at `field`, each part cut short by the server
  // if long; a damaged journal's error that is no such object comes as a value.
  function errorBox(title, owner, field) {
    const error = owner[field];
    if (!error) return null;
    if (typeof error !== "object") {
      return el("div", { class: "panel error-box" }, el("div", { class: "what" }, title + ": " + valueText(owner, field)), wholeButton(id, owner, field));
    }
    return el("div", { class: "panel error-box" },
      el("div", { class: "what" }, title + ": " + textOf(error, "type") + ": " + textOf(error, "msg")),
      error.tb ? el("details", {}, el("summary", {}, "traceback"), el("pre", { class: "mono" }, textOf(error, "tb"))) : null,
      wholeButton(id, owner, field));
  }

  function render(data) {
    last = data;
    document.getElementById("content").hidden = false;
    const w = data.workflow;
    document.getElementById("state").replaceChildren(badge(w.state));
    document.getElementById("name").textContent = textOf(w, "workflow");
    const took = data.ended ? duration(data.ended - data.started) : "";
    document.getElementById("facts").replaceChildren(...[
      fact("Workflow", textOf(w, "workflow")),
      fact("Now", w.state === "running" || w.state === "queued" ? textOf(w, "current") : ""),  // (sleeping, waiting: below)
      fact(w.state === "queued" ? "Enqueued" : data.generation ? `Generation ${data.generation} began` : "Started", when(data.started)),
      fact("Runner", runnerText(w)),
      fact(data.ended ? "Ended" : "Last update", data.ended ? when(data.ended) + " (" + took + ")" : when(w.updated)),
      fact("Steps", String(data.total_steps)),
      fact(FINAL.has(w.state) ? "Last status" : "Status", w.status === null ? "" : el("span", {}, shortValue(w, "status", 60), " ", wholeButton(id, w, "status"))),
      fact("Waiting for event", textOf(w, "waiting_for")),
      fact("Wakes at", when(w.wake_at)),
      fact("Unread events", w.unread_events ? String(w.unread_events) : ""),
      fact("Skipped messages", w.skipped_messages ? `${w.skipped_messages} (latest ${w.last_skip})` : ""),
      fact("Generation", data.generation ? String(data.generation) : ""),
      fact("Parent", data.parent ? el("a", { href: durable.workflowURL(data.parent) }, data.parent) : ""),
      ...(data.links || []).map(linkFact),
    ].filter(Boolean));
    const outcome = [];
    if (data.outcome === "completed" || data.outcome === "continued as new") {
      outcome.push(el("h2", {}, data.outcome === "completed" ? "Result" : "Continued as new with"),
                   el("pre", { class: "mono" }, valueText(data, "result", 2)), wholeButton(id, data, "result"));
    }
    if (data.error) {
      const cancelled = data.outcome === "cancelled";
      outcome.push(el("h2", {}, cancelled ? "Cancellation" : "Error"), errorBox(cancelled ? "Cancelled" : "Failed", data, "error"));
    }
    document.getElementById("outcome").replaceChildren(...outcome.filter(Boolean));
    document.getElementById("arguments").textContent = valueText(data, "arguments", 2);
    document.getElementById("arguments-whole").replaceChildren(...[wholeButton(id, data, "arguments")].filter(Boolean));
    const final = FINAL.has(w.state);
    const tokenless = !token();
    for (const button of [document.getElementById("send-button"), document.getElementById("cancel-button")]) {
      button.disabled = final || tokenless;
      button.title = final ? "The workflow has ended." : tokenless
        ? "Open the address `durable ui` printed (it carries the token) to act on workflows." : "";
    }
    const ended = FINAL.has(w.state);
    const actions = {
      "resume-button": [w.state === "failed" || w.state === "cancelled", "Only a failed or cancelled workflow resumes."],
      "restart-button": [ended, "A restart is made from an ended workflow."],
      "fork-button": [ended, "A fork is made from an ended workflow."],
    };
    for (const [name, [allowed, why]] of Object.entries(actions)) {
      const button = document.getElementById(name);
      button.disabled = !allowed || tokenless;
      button.title = !allowed ? why : tokenless ? "Open the address `durable ui` printed (it carries the token)." : "";
    }
    renderTimeline(data);
    renderMessages(data);
  }

  function linkFact(link) {  // resumed; forked from/to; restarted from/as
    const label = link.kind.charAt(0).toUpperCase() + link.kind.slice(1);
    const parts = [];
    if (link.workflow_id) parts.push(el("a", { href: durable.workflowURL(link.workflow_id), class: "link-run" }, link.workflow_id), " ");
    if (link.step !== null) parts.push(`step ${link.step} · `);
    if (link.override !== null) parts.push(`step ${link.override}'s result overridden · `);
    parts.push(when(link.at));
    if (link.by) parts.push(` · by ${link.by}`);
    if (link.reason) parts.push(` · ${link.reason}`);
    return fact(label, el("span", { class: "link" }, ...parts));
  }

  function bar(kind, from, to, scale, title) {
    const left = scale(from), right = scale(to);
    return el("div", { class: "tl-bar " + kind, title,
      style: `left:${left}%;width:${Math.max(0, right - left)}%` });
  }

  function renderTimeline(data) {
    const steps = data.steps;
    const nowSeconds = Date.now() / 1000;
    const live = !FINAL.has(data.workflow.state);
    let start = Infinity, end = -Infinity;
    for (const step of steps) {  // (a timer not fired yet does not stretch the axis)
      for (const t of [step.began, step.ended]) {
        if (typeof t === "number") { start = Math.min(start, t); end = Math.max(end, t); }
      }
      for (const attempt of step.attempts) {
        for (const t of [attempt.began, attempt.ended, attempt.retry_at]) {
          if (typeof t === "number") { start = Math.min(start, t); end = Math.max(end, t); }
        }
      }
    }
    const lastPage = data.from + steps.length >= data.total_steps;
    // A live workflow's axis runs to now while something of it is under way; a finished
    // one's to its end (a cancelled sleep, say).
    const underWay = steps.some((step) => ["running", "sleeping", "waiting"].includes(step.state));
    if (lastPage) end = Math.max(end, live ? (underWay ? nowSeconds : end) : data.ended ?? end);
    if (!isFinite(start)) { start = data.started; end = data.ended || nowSeconds; }
    if (end <= start) end = start + 0.001;
    const scale = (t) => Math.min(100, Math.max(0, ((t - start) / (end - start)) * 100));
    const rows = [el("div", { class: "tl-axis" }, el("div", {}, "step"),
      el("div", { class: "ticks" }, el("span", {}, when(start)), el("span", {}, "+" + duration((end - start) / 2)), el("span", {}, "+" + duration(end - start))),
      el("div", { class: "tl-end" }, "state · took"))];
    for (const step of steps) {
      const bars = [];
      const stepEnd = step.ended ?? (live || step.state === "abandoned" ? end : step.began);
      if (step.kind === "activity" || step.kind === "child") {
        step.attempts.forEach((attempt) => {
          const to = attempt.ended ?? (live ? end : attempt.began);
          const kind = attempt.ended === null ? "live" : attempt.error ? "bad" : "ok";
          const what = `attempt ${attempt.number}` + (attempt.error ? ": " + errorLine(attempt) : "");
          if (attempt.began !== null) bars.push(bar(kind, attempt.began, to, scale, what));
          if (attempt.retry_at) bars.push(bar("backoff", attempt.ended, attempt.retry_at, scale, "back-off until " + when(attempt.retry_at)));
        });
      } else if (step.kind === "timer") {
        const kind = step.state === "abandoned" ? "gone" : "timer";
        const to = step.ended ?? (kind === "timer" ? Math.min(end, step.fire_at) : stepEnd);
        if (step.began !== null) bars.push(bar(kind, step.began, to, scale, "sleep until " + when(step.fire_at)));
      } else if (step.kind === "wait") {
        const kind = step.state === "received" ? "got" : step.state === "waiting" ? "wait" : "gone";
        const timeout = step.timeout_at ? " (times out at " + when(step.timeout_at) + ")" : "";
        if (step.began !== null) bars.push(bar(kind, step.began, stepEnd, scale, "waiting for " + step.name + timeout));
      } else if (step.began !== null) {
        bars.push(el("div", { class: "tl-bar mark", style: `left:calc(${scale(step.began)}% - 4px)`, title: "status " + shortValue(step, "result") }));
      }
      const took = step.began !== null && step.ended !== null ? duration(step.ended - step.began) : "";
      const name = textOf(step, "name");
      const row = el("div", { class: "tl-row" + (open.has(step.step) ? " open" : ""), "data-step": step.step,
        onclick: () => { open.has(step.step) ? open.delete(step.step) : open.add(step.step); renderTimeline(last); } },
        el("div", { class: "tl-label", title: `${step.kind} ${name}` },
          el("span", { class: "n" }, "#" + step.step), el("span", { class: "kind" }, step.kind + " "), step.kind === "status" ? "" : name),
        el("div", { class: "tl-track" }, bars),
        el("div", { class: "tl-end" }, stepBadge(step), took ? " " + took : ""));
      rows.push(row);
      if (open.has(step.step)) rows.push(stepDetail(step));
    }
    if (!steps.length) rows.push(el("div", { class: "pager muted" }, "No steps yet."));
    document.getElementById("timeline").replaceChildren(...rows);
    const shown = steps.length ? `steps ${data.from}–${data.from + steps.length - 1} of ${data.total_steps}` : "";
    document.getElementById("step-range").textContent = shown;
    document.getElementById("step-count").textContent = data.total_steps ? `(${data.total_steps} steps)` : "";
    document.getElementById("step-pager").style.display = data.total_steps > steps.length ? "" : "none";
    document.getElementById("first").disabled = document.getElementById("earlier").disabled = data.from === 0;
    const atEnd = data.from + steps.length >= data.total_steps;
    document.getElementById("later").disabled = document.getElementById("latest").disabled = atEnd;
  }

  const STEP_CLASS = { completed: "completed", fired: "completed", received: "completed",
                       failed: "failed", running: "running", sleeping: "sleeping", waiting: "waiting",
                       "timed out": "cancelled" };
  function stepBadge(step) { return el("span", { class: "badge " + (STEP_CLASS[step.state] || "") }, step.state); }

  function precise(seconds) {  // a time to the millisecond, for attempts (a past day's with its date)
    if (typeof seconds !== "number") return "";
    const date = new Date(seconds * 1000);
    const day = new Date().toDateString() === date.toDateString() ? "" : date.toLocaleDateString(undefined, { dateStyle: "medium" }) + " ";
    return day + date.toLocaleTimeString(undefined, { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
  }

  function errorLine(attempt) {  // "Type: message" of a failed attempt
    const error = attempt.error;
    if (typeof error !== "object") return valueText(attempt, "error");
    return textOf(error, "type") + ": " + textOf(error, "msg");
  }

  function siteDetail(site) {  // where the workflow's code asked for the step, and the lines around it
    const parts = [el("div", { class: "site" }, "code ", el("span", { class: "mono" }, `${site.file}:${site.line}`), ` in ${site.function}`)];
    if (site.excerpt.length) {
      parts.push(el("pre", { class: "mono excerpt" }, site.excerpt.map(([number, text]) =>
        el("div", { class: number === site.line ? "here" : "muted" }, `${String(number).padStart(5)} │ ${text}`))));
    } else {
      parts.push(el("div", { class: "muted" }, "(the source is not on this machine)"));
    }
    return el("div", {}, parts);
  }

  function stepDetail(step) {
    const parts = [];
    if (step.total_attempts > step.attempts.length) {
      parts.push(el("div", { class: "muted" }, `the last ${step.attempts.length} of ${step.total_attempts} attempts`));
    }
    if (step.attempts.length) {
      parts.push(el("table", {}, el("tr", {}, el("th", {}, "attempt"), el("th", {}, "began"), el("th", {}, "took"), el("th", {}, "outcome")),
        step.attempts.map((a) => el("tr", {},
          el("td", {}, "#" + a.number), el("td", {}, precise(a.began)),
          el("td", {}, a.ended !== null && a.began !== null ? duration(a.ended - a.began) : a.ended === null ? "running" : ""),
          el("td", {}, a.error ? errorLine(a) + (a.retry_at ? ` (next attempt at ${precise(a.retry_at)})` : "") : a.ended !== null ? "ok" : "")))));
    }
    if (step.site) parts.push(siteDetail(step.site));
    if (step.child_id) parts.push(el("div", {}, "child workflow ", el("a", { href: durable.workflowURL(step.child_id) }, textOf(step, "child_id"))));
    if (step.fire_at) parts.push(el("div", {}, "fires at " + when(step.fire_at)));
    if (step.timeout_at) parts.push(el("div", {}, (step.state === "timed out" ? "timed out at " : "times out at ") + when(step.timeout_at)));
    if (["completed", "received", "published"].includes(step.state)) {
      parts.push(el("pre", { class: "mono" }, valueText(step, "result", 2)), wholeButton(id, step, "result"));
    }
    if (step.error) parts.push(errorBox("Error", step, "error"));
    else {
      const failed = step.attempts.filter((a) => a.error);
      if (failed.length) parts.push(errorBox(`Attempt ${failed[failed.length - 1].number}`, failed[failed.length - 1], "error"));
    }
    return el("div", { class: "tl-detail" }, parts);
  }

  function renderMessages(data) {
    const parts = [];
    if (data.messages.length) {
      parts.push(el("h2", {}, `Events and cancellations received (${data.total_messages})`),
        el("div", { class: "panel" }, el("table", { class: "grid" },
          el("thead", {}, el("tr", {}, ["#", "kind", "name", "received", "payload"].map((h) => el("th", {}, h)))),
          el("tbody", {}, data.messages.map((m) => el("tr", {},
            el("td", {}, String(m.position)), el("td", {}, m.kind), el("td", {}, textOf(m, "name")),
            el("td", { class: "muted" }, when(m.at)), el("td", { class: "mono" }, shortValue(m, "payload", 120), " ", wholeButton(id, m, "payload"))))))));
    }
    document.getElementById("messages").replaceChildren(...parts);
    const shownOf = data.total_inbox > data.inbox.length ? `the first ${data.inbox.length} of ${data.total_inbox}` : String(data.total_inbox);
    const waiting = data.inbox.length ? [el("h2", {}, `Sent, not received yet (${shownOf})`),
      el("div", { class: "panel" }, el("table", { class: "grid" },
        el("thead", {}, el("tr", {}, ["#", "kind", "name", "sent", "payload"].map((h) => el("th", {}, h)))),
        el("tbody", {}, data.inbox.map((m) => el("tr", { "data-position": m.position },
          el("td", {}, String(m.position)), el("td", {}, m.kind), el("td", {}, textOf(m, "name")),
          el("td", { class: "muted" }, when(m.sent)), el("td", { class: "mono" }, shortValue(m, "payload", 120), " ", wholeButton(id, m, "payload")))))))] : [];
    document.getElementById("inbox").replaceChildren(...waiting);
  }

  async function refresh() {
    const query = new URLSearchParams({ limit: PAGE });
    if (first !== null) query.set("from", first);
    const problem = document.getElementById("problem");
    try {
      render(await getJSON("/api/workflows/" + encodeURIComponent(id) + "?" + query));
      problem.replaceChildren();
    } catch (error) {
      // Nothing to act on (an unknown id, an unreadable journal), nor sure of what was shown.
      for (const name of ["send-button", "cancel-button", "resume-button", "restart-button", "fork-button"]) {
        document.getElementById(name).disabled = true;
      }
      if (last === null) {
        problem.replaceChildren(durable.unavailable("workflow", error));
      } else {
        problem.replaceChildren(el("div", { class: "notice bad" }, error.message));
      }
    }
  }

  function page(to) { first = to; refresh(); }
  document.getElementById("first").addEventListener("click", () => page(0));
  document.getElementById("earlier").addEventListener("click", () => page(Math.max(0, last.from - PAGE)));
  document.getElementById("later").addEventListener("click", () => {
    const next = last.from + PAGE;
    page(next + PAGE >= last.total_steps ? null : next);
  });
  document.getElementById("latest").addEventListener("click", () => page(null));

  function wire(dialogName, submit) {
    const dialog = document.getElementById(dialogName + "-dialog");
    const problem = document.getElementById(dialogName + "-problem");
    document.getElementById(dialogName + "-button").addEventListener("click", () => {
      problem.textContent = "";
      document.getElementById("notice").replaceChildren();
      const name = document.getElementById("event-name");
      if (dialogName === "send" && !name.value && last.workflow.waiting_for) name.value = last.workflow.waiting_for;
      dialog.showModal();
    });
    document.getElementById(dialogName + "-close").addEventListener("click", () => dialog.close());
    document.getElementById(dialogName + "-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.textContent = "";
      try {
        const message = await submit();
        dialog.close();
        document.getElementById("notice").replaceChildren(el("div", { class: "notice good" }, message));
        refresh();
      } catch (error) {
        problem.textContent = error.message;
      }
    });
  }

  wire("send", async () => {
    const name = document.getElementById("event-name").value.trim();
    const text = document.getElementById("event-payload").value.trim();
    let payload = null;
    if (text) {
      try { payload = JSON.parse(text); } catch (error) { throw new Error("The payload is not JSON: " + error.message); }
    }
    const eventId = document.getElementById("event-id").value.trim() || null;
    const answer = await postJSON("/api/workflows/" + encodeURIComponent(id) + "/events", { name, payload, event_id: eventId });
    return answer.sent ? `Event "${name}" sent.` : `Not sent: event id "${eventId}" was already sent.`;
  });
  document.getElementById("cancel-id").textContent = id;
  wire("cancel", async () => {
    await postJSON("/api/workflows/" + encodeURIComponent(id) + "/cancel", { reason: document.getElementById("cancel-reason").value });
    return "Cancellation sent: the workflow takes it at its current await.";
  });

  const EXPLAIN = {
    resume: "Its journal is kept: the failure (or cancellation) is set aside and it continues from the step that failed, every result before it kept. A process running its code takes it.",
    restart: "A new run with the same arguments, linked to this one. A process running its code takes it.",
    fork: "A new run that replays this one's recorded steps up to the step below and runs live from there with the current code, linked to this one. A process running its code takes it.",
  };
  let operation = null;
  const operateDialog = document.getElementById("operate-dialog");
  document.getElementById("operate-id").textContent = id;
  for (const action of ["resume", "restart", "fork"]) {
    document.getElementById(action + "-button").addEventListener("click", () => {
      operation = action;
      document.getElementById("operate-verb").textContent = action.charAt(0).toUpperCase() + action.slice(1);
      document.getElementById("operate-explain").textContent = EXPLAIN[action];
      document.getElementById("operate-step").hidden = action !== "fork";
      document.getElementById("operate-new").hidden = action === "resume";
      document.getElementById("operate-problem").textContent = "";
      document.getElementById("operate-override").checked = false;
      document.getElementById("operate-override-fields").hidden = true;
      document.getElementById("notice").replaceChildren();
      operateDialog.showModal();
    });
  }
  document.getElementById("operate-close").addEventListener("click", () => operateDialog.close());
  document.getElementById("operate-override").addEventListener("change", (event) => {
    document.getElementById("operate-override-fields").hidden = !event.target.checked;
  });
  document.getElementById("operate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const problem = document.getElementById("operate-problem");
    problem.textContent = "";
    const body = { reason: document.getElementById("operate-reason").value.trim() || null };
    if (operation !== "resume") body.new_id = document.getElementById("operate-new-id").value.trim() || null;
    if (operation === "fork") {
      if (document.getElementById("operate-from-failure").checked) body.from_failure = true;
      else body.at_step = Number(document.getElementById("operate-at-step").value);
      if (document.getElementById("operate-override").checked) {
        const text = document.getElementById("operate-override-value").value.trim();
        let value;
        try {
          value = JSON.parse(text);
        } catch (error) {
          problem.textContent = "The override's value is not JSON (" + error.message + "): write it as JSON, text in double quotes.";
          return;
        }
        body.override = { step: Number(document.getElementById("operate-override-step").value), value };
      }
    }
    try {
      const answer = await postJSON("/api/workflows/" + encodeURIComponent(id) + "/" + operation, body);
      operateDialog.close();
      const done = operation === "resume" ? "Resumed" : operation === "restart" ? "Restarted as" : "Forked as";
      const run = answer.workflow_id === id ? [] : [" ", el("a", { href: durable.workflowURL(answer.workflow_id), id: "operated-run" }, answer.workflow_id)];
      document.getElementById("notice").replaceChildren(el("div", { class: "notice good" }, done, ...run, ". A process running its code takes it."));
      refresh();
    } catch (error) {
      problem.textContent = error.message;
    }
  });

  // The run's streams (durable.Stream): a tab per stream, its values as they come (polled
  // every second from the last offset shown while the workflow runs; the latest 500 kept).
  const SHOWN = 500;
  const streams = { name: null, next: 0, ended: false, lastStep: {} };

  function streamLine(item) {
    const value = typeof item.value === "string" && !item.truncated ? item.value : JSON.stringify(item.value);
    const who = item.attempt === null ? "workflow" : `step ${item.step} · attempt ${item.attempt}`;
    return el("div", { class: "stream-item" + (item.restarted ? " restarted" : ""), "data-offset": item.offset },
      el("span", { class: "muted" }, "#" + item.offset + " "),
      item.restarted ? el("span", { class: "badge" }, "attempt ran again") : null, " ",
      value + (item.truncated ? "…" : ""), " ", el("span", { class: "muted" }, "(" + who + ")"));
  }

  async function refreshStreams() {
    const query = new URLSearchParams({ offset: streams.next, limit: SHOWN });
    if (streams.name) query.set("name", streams.name);
    let data;
    try {
      data = await getJSON("/api/workflows/" + encodeURIComponent(id) + "/streams?" + query);
    } catch (error) {
      return;  // (the page's own refresh reports what is wrong)
    }
    const names = Object.keys(data.streams);
    document.getElementById("streams").hidden = names.length === 0;
    if (!names.length) { streams.ended = data.ended; return; }
    if (!streams.name) {  // (the first stream, then its values from 0)
      streams.name = names[0];
      return refreshStreams();
    }
    document.getElementById("stream-count").textContent = `(${names.length})`;
    document.getElementById("stream-tabs").replaceChildren(...names.map((name) =>
      el("button", { class: name === streams.name ? "primary" : "", onclick: () => {
        streams.name = name; streams.next = 0;
        document.getElementById("stream-items").replaceChildren();
        refreshStreams();
      } }, `${name} (${data.streams[name]})`)));
    const box = document.getElementById("stream-items");
    const follow = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.append(...data.items.map(streamLine));
    while (box.childElementCount > SHOWN) box.firstElementChild.remove();
    if (data.items.length) streams.next = data.items[data.items.length - 1].offset + 1;
    if (follow) box.scrollTop = box.scrollHeight;
    streams.ended = data.ended;
    if (data.items.length === SHOWN) return refreshStreams();  // (more there already)
  }

  async function streamLoop() {
    const live = document.getElementById("live").checked;
    if (live && !document.hidden && !streams.ended) await refreshStreams();
    setTimeout(streamLoop, 1000);
  }
  refreshStreams().finally(() => setTimeout(streamLoop, 1000));

  async function loop() {
    const live = document.getElementById("live").checked;
    if (live && !document.hidden && last && !FINAL.has(last.workflow.state)) await refresh();
    setTimeout(loop, 2000);
  }
  refresh().finally(() => setTimeout(loop, 2000));
})();
