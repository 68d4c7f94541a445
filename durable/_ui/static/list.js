// The list page: filters, search, pages of 100, refreshed every 3 s while "live" is on.
// With a filter of the form (workflow, id prefix, error type, times...), the API answers a
// query, paged by cursor; a selection (checkboxes) or every matching workflow can be
// cancelled, resumed, restarted or forked in bulk, after a dry run lists what would be
// done (and what is skipped, and why) and the user confirms.
"use strict";

(() => {
  const { el, getJSON, postJSON, badge, whenShort, shortValue, textOf, workflowURL } = durable;
  const PAGE = 100;
  const params = new URLSearchParams(location.search);
  const status = document.getElementById("status");
  const search = document.getElementById("search");
  const live = document.getElementById("live");
  const form = document.getElementById("filter-form");
  const selected = new Set();
  let offset = Number(params.get("offset") || 0);
  let cursors = [null];  // (query mode: the cursor of each page shown so far)
  status.value = params.get("status") || "";
  search.value = params.get("search") || "";
  for (const input of form.elements) {
    if (input.name && params.get(input.name)) input.value = params.get(input.name);
  }
  if (filterQuery().toString()) document.getElementById("filters").open = true;

  function filterQuery() {  // the form's fields that are filled in
    const query = new URLSearchParams();
    for (const input of form.elements) {
      if (input.name && input.value.trim()) query.set(input.name, input.value.trim());
    }
    return query;
  }
  const querying = () => filterQuery().toString() !== "";
  const TIMES = ["started_after", "started_before", "updated_after", "updated_before", "ended_after", "ended_before"];

  function apiFilter() {  // filterQuery, with times typed without an offset read as local time
    const query = filterQuery();
    for (const name of TIMES) {
      const text = query.get(name);
      if (!text || !/^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?$/.test(text)) continue;
      const moment = new Date(text.length === 10 ? text + "T00:00" : text.replace(" ", "T"));
      if (!Number.isNaN(moment.getTime())) query.set(name, moment.toISOString());
    }
    return query;
  }

  function now(workflow) {
    if (workflow.error) return textOf(workflow, "error").split("\n")[0];
    const parts = [];
    if (workflow.state === "sleeping" && workflow.wake_at) parts.push("sleeping until " + whenShort(workflow.wake_at));
    else if (workflow.current) parts.push(textOf(workflow, "current"));
    if (workflow.status !== null && workflow.status !== undefined) {  // (an ended one's: its last)
      parts.push((workflow.ended ? "last status " : "status ") + shortValue(workflow, "status", 40));
    }
    if (workflow.unread_events) parts.push(workflow.unread_events + " unread");
    if (workflow.skipped_messages) parts.push(workflow.skipped_messages + " skipped");
    if (workflow.stalled) parts.unshift("stalled: no process holds it");
    return parts.join(" · ");
  }

  async function refresh() {
    const query = querying() ? apiFilter() : new URLSearchParams({ offset });
    query.set("limit", PAGE);
    if (querying() && cursors[cursors.length - 1]) query.set("cursor", cursors[cursors.length - 1]);
    if (status.value) query.set("status", status.value);
    if (search.value.trim() && !querying()) query.set("search", search.value.trim());
    const problem = document.getElementById("problem");
    let data;
    try {
      data = await getJSON("/api/workflows?" + query);
      problem.replaceChildren();
    } catch (error) {
      problem.replaceChildren(el("div", { class: "notice bad" }, "Could not read the workflows: " + error.message));
      return;
    }
    document.getElementById("directory").textContent = data.directory;
    const rows = data.workflows.map((w) => el("tr", { "data-id": w.id },
      // (each cell named by a class: the narrow layout and the tests find them by it)
      el("td", { class: "pick" }, pick(w.id)),
      el("td", { class: "id mono", title: w.id }, el("a", { href: workflowURL(w.id) }, w.id)),
      el("td", { class: "workflow" }, textOf(w, "workflow")),
      el("td", { class: "state" }, badge(w.state)),
      el("td", { class: "steps" }, String(w.steps)),
      el("td", { class: "now " + (w.error || w.stalled ? "error" : "muted") }, now(w)),
      el("td", { class: "started muted nowrap", title: durable.when(w.started) }, whenShort(w.started)),
      el("td", { class: "updated muted nowrap", title: durable.when(w.updated) }, whenShort(w.updated)),
    ));
    if (!rows.length) {
      const filtered = status.value || search.value.trim() || querying();
      rows.push(el("tr", {}, el("td", { colspan: 8, class: "muted" },
        filtered ? "No workflow matches." : "No workflows in this directory yet.")));
    }
    document.querySelector("#workflows tbody").replaceChildren(...rows);
    if (querying()) {  // (by cursor: the page's place is known by the pages before it)
      const first = (cursors.length - 1) * PAGE;
      document.getElementById("count").textContent = data.total
        ? `${first + 1}–${first + data.workflows.length} of ${data.total} matching` : "";
      document.getElementById("previous").disabled = cursors.length === 1;
      document.getElementById("next").disabled = !data.next_cursor;
      nextCursor = data.next_cursor;
    } else {
      const last = Math.min(data.total, offset + data.workflows.length);
      document.getElementById("count").textContent = data.total
        ? `${offset + 1}–${last} of ${data.total} workflow${data.total === 1 ? "" : "s"}` : "";
      document.getElementById("previous").disabled = offset === 0;
      document.getElementById("next").disabled = last >= data.total;
    }
    showSelection();
    if (data.queues) showQueues(data.queues);  // (a query's answer has none: keep them)
    const unreadable = Object.entries(data.unreadable);
    document.getElementById("unreadable").replaceChildren(...(unreadable.length ? [
      el("h2", {}, `Unreadable journals and queued requests (${data.total_unreadable})`),
      el("div", { class: "panel" }, el("table", { class: "grid" }, el("tbody", {},
        unreadable.map(([id, why]) => el("tr", {}, el("td", { class: "mono" }, id), el("td", {}, why)))))),
    ] : []));
  }

  function queueLine(q) {  // as `durable list` says it
    const parts = [];
    if (q.concurrency !== null) {
      parts.push(`${q.running === null || q.running < 0 ? "?" : q.running} of ${q.concurrency} running,`);
    }
    parts.push(`${q.admitted} started and not ended, ${q.waiting} waiting`);
    if (q.rate) parts.push(`· ${q.recent_starts} starts in the last ${q.rate[1]} s (limit ${q.rate[0]})`);
    if (q.concurrency_per_key !== null) parts.push(`· at most ${q.concurrency_per_key} per key`);
    if (q.damaged) parts.push(`· ${q.damaged} set aside as damaged (listed as unreadable)`);
    return parts.join(" ");
  }

  function showQueues(queues) {  // each queue's load: running, waiting, rate
    document.getElementById("queues").replaceChildren(...(queues.length ? [
      el("div", { class: "panel" }, el("table", { class: "grid", id: "queue-loads" }, el("tbody", {},
        queues.map((q) => el("tr", {}, el("td", { class: "mono" }, `queue ${q.name}`), el("td", {}, queueLine(q))))))),
    ] : []));
  }

  let nextCursor = null;

  function pick(id) {  // a row's checkbox, kept checked across refreshes
    const box = el("input", { type: "checkbox", "aria-label": "Select " + id });
    box.checked = selected.has(id);
    box.addEventListener("change", () => {
      if (box.checked) selected.add(id); else selected.delete(id);
      showSelection();
    });
    return box;
  }

  function clearSelection() {
    selected.clear();
    for (const box of document.querySelectorAll("#workflows tbody td.pick input")) box.checked = false;
    showSelection();
  }

  function showSelection() {
    document.getElementById("selected-count").textContent = selected.size ? `${selected.size} selected` : "";
    for (const action of Object.keys(BULK)) {
      document.getElementById(action + "-selected").disabled = selected.size === 0;
    }
    const boxes = [...document.querySelectorAll("#workflows tbody td.pick input")];
    document.getElementById("select-all").checked = boxes.length > 0 && boxes.every((box) => box.checked);
  }

  function matchingFilter() {  // the filter of what the page shows, as the bulk API takes it
    const filter = {};
    for (const [name, value] of apiFilter()) filter[name === "workflow" ? "workflow_name" : name] = value;
    if (status.value) filter.state = status.value;
    return filter;
  }

  // What each bulk action says in the dialog, and in the notice once done.
  const BULK = {
    cancel: {
      verb: "Cancel", confirm: "Cancel them", close: "Keep them running", done: "cancellation sent",
      reason: "cancelled in bulk from the web UI",
      does: "Each gets CancelledError at its current await, then ends cancelled, for good. Runs as a " +
        "bulk action journaled with its reason: retried, it cancels none twice.",
    },
    resume: {
      verb: "Resume", confirm: "Resume them", close: "Leave them", done: "resumed",
      reason: "resumed in bulk from the web UI",
      does: "Each keeps its journal and goes on from the step that failed (or where it was " +
        "cancelled), once a process with its code runs it. Journaled with its reason: retried, " +
        "it resumes none twice.",
    },
    restart: {
      verb: "Restart", confirm: "Restart them", close: "Leave them", done: "restarted",
      reason: "restarted in bulk from the web UI",
      does: "Each runs again from the start as a new run (id@bulk id) with the same arguments, " +
        "linked to it, once a process with its code runs it. Retried, it makes no second run.",
    },
    fork: {
      verb: "Fork", confirm: "Fork them", close: "Leave them", done: "forked",
      reason: "forked in bulk from the web UI",
      does: "Each gets a new run (id@bulk id) that replays its recorded steps up to the step below " +
        "and runs live from there, once a process with its code runs it. Retried, it makes no second run.",
    },
  };
  let planned = null;  // (the dry run the dialog shows: its action, filter and bulk id)

  function forkOptions() {  // the dialog's "fork from" choice, as the bulk's options
    if (!document.getElementById("bulk-fork-step").checked) return { from_failure: true };
    return { at_step: Math.max(0, Number(document.getElementById("bulk-fork-at").value) || 0) };
  }

  async function actInBulk(action, filter, what) {  // a dry run first, shown in the dialog
    const notice = document.getElementById("bulk-notice");
    notice.replaceChildren();
    const says = BULK[action];
    const dialog = document.getElementById("bulk-dialog");
    if (action === "fork" && !dialog.open) document.getElementById("bulk-fork-failure").checked = true;
    const options = action === "fork" ? forkOptions() : {};
    let plan;
    try {
      plan = await postJSON("/api/bulk/" + action, { filter, options, dry_run: true });
    } catch (error) {
      notice.replaceChildren(el("div", { class: "notice bad" }, `Bulk ${action} failed: ` + error.message));
      return;
    }
    if (!plan.acted_on && !(action === "fork" && plan.matched)) {  // (fork: another step may do)
      const why = Object.values(plan.skipped)[0];
      notice.replaceChildren(el("div", { class: "notice" }, `Nothing to ${action}: ` +
        (plan.matched ? `none of them can be (${why}${plan.skipped_total > 1 ? ", ..." : ""}).` : "no workflow matches.")));
      return;
    }
    planned = { action, filter, options, bulk_id: plan.bulk_id, what };
    const ids = Object.keys(plan.outcomes);
    document.getElementById("bulk-verb").textContent = says.verb;
    document.getElementById("bulk-does").textContent = says.does;
    document.getElementById("bulk-fork").hidden = action !== "fork";
    document.getElementById("bulk-count").textContent =
      `${plan.acted_on} workflow${plan.acted_on === 1 ? "" : "s"} (${what})`;
    document.getElementById("bulk-list").replaceChildren(
      ...ids.slice(0, 10).map((id) => el("li", {}, id)),
      ...(plan.acted_on > 10 ? [el("li", { class: "muted" }, `… and ${plan.acted_on - 10} more`)] : []));
    const skipped = Object.entries(plan.skipped).slice(0, 3).map(([id, why]) => `${id}: ${why}`).join("; ");
    document.getElementById("bulk-skipped").textContent = plan.skipped_total
      ? `${plan.skipped_total} more match but cannot be: left as they are (${skipped}${plan.skipped_total > 3 ? "; ..." : ""}).` : "";
    const reason = document.getElementById("bulk-reason");
    if (!dialog.open || Object.values(BULK).some((each) => each.reason === reason.value)) reason.value = says.reason;
    document.getElementById("bulk-close").textContent = says.close;
    document.getElementById("bulk-confirm").textContent = says.confirm;
    document.getElementById("bulk-confirm").disabled = !plan.acted_on;
    document.getElementById("bulk-problem").textContent = "";
    if (!dialog.open) dialog.showModal();
  }

  for (const id of ["bulk-fork-failure", "bulk-fork-step", "bulk-fork-at"]) {  // (a new dry run)
    document.getElementById(id).addEventListener("change", () => {
      if (planned) actInBulk("fork", planned.filter, planned.what);
    });
  }
  document.getElementById("bulk-close").addEventListener("click", () => document.getElementById("bulk-dialog").close());
  document.getElementById("bulk-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const says = BULK[planned.action];
    const reason = document.getElementById("bulk-reason").value.trim() || says.reason;
    const { action, filter, options, bulk_id } = planned;
    try {
      const done = await postJSON("/api/bulk/" + action, { filter, options, bulk_id, reason });
      document.getElementById("bulk-dialog").close();
      const errors = Object.keys(done.errors).length;
      const skipped = Object.values(done.outcomes).filter((outcome) => outcome.startsWith("skipped")).length;
      const acted = done.acted_on - errors - skipped;
      const count = action === "cancel"
        ? `${acted} cancellation${acted === 1 ? "" : "s"} sent` : `${acted} ${says.done}`;
      const runs = Object.keys(done.runs || {}).length;
      document.getElementById("bulk-notice").replaceChildren(el("div", { class: "notice " + (errors ? "bad" : "good") },
        `Bulk ${done.bulk_id}: ${count}` + (skipped ? `, ${skipped} skipped (changed meanwhile)` : "") +
        (errors ? `, ${errors} failed: ` + Object.entries(done.errors).slice(0, 3).map(([id, why]) => `${id}: ${why}`).join("; ") : "") +
        (runs ? `. A process with the workflows' code runs ${runs === 1 ? "it" : "them"} (recover(), serve()).` : ".")));
      clearSelection();  // (at once, boxes included: a box left checked would not be selected)
      refresh();
    } catch (error) {
      document.getElementById("bulk-problem").textContent = error.message;
    }
  });

  document.getElementById("select-all").addEventListener("change", (event) => {
    for (const box of document.querySelectorAll("#workflows tbody td.pick input")) {
      box.checked = event.target.checked;
      box.dispatchEvent(new Event("change"));
    }
  });
  for (const action of Object.keys(BULK)) {
    document.getElementById(action + "-selected").addEventListener("click", () =>
      actInBulk(action, { workflow_id: [...selected] }, "the selected ones"));
    document.getElementById(action + "-matching").addEventListener("click", () => {
      const filter = matchingFilter();
      const notice = document.getElementById("bulk-notice");
      if (search.value.trim() && !querying()) {
        notice.replaceChildren(el("div", { class: "notice bad" },
          "The search box is not a filter a bulk action can take: use the Filter form (id prefix, workflow...)."));
        return;
      }
      if (!Object.keys(filter).length) {
        notice.replaceChildren(el("div", { class: "notice bad" },
          `Choose a state or a filter first: to ${action} every workflow takes \`durable bulk ${action} --all\`.`));
        return;
      }
      actInBulk(action, filter, "every one matching the filter");
    });
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); offset = 0; cursors = [null]; remember(); refresh(); });
  form.addEventListener("reset", () => setTimeout(() => { offset = 0; cursors = [null]; remember(); refresh(); }));

  function remember() {
    const query = filterQuery();
    if (status.value) query.set("status", status.value);
    if (search.value.trim()) query.set("search", search.value.trim());
    if (offset) query.set("offset", offset);
    const text = query.toString();
    history.replaceState(null, "", "/" + (text ? "?" + text : ""));
  }

  let typing;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { offset = 0; cursors = [null]; remember(); refresh(); }, 200);
  });
  status.addEventListener("change", () => { offset = 0; cursors = [null]; remember(); refresh(); });
  document.getElementById("previous").addEventListener("click", () => {
    if (querying()) cursors = cursors.length > 1 ? cursors.slice(0, -1) : cursors;
    else offset = Math.max(0, offset - PAGE);
    remember(); refresh();
  });
  document.getElementById("next").addEventListener("click", () => {
    if (querying()) { if (nextCursor) cursors.push(nextCursor); } else offset += PAGE;
    remember(); refresh();
  });

  async function loop() {
    if (live.checked && !document.hidden) await refresh().catch(() => {});
    setTimeout(loop, 3000);
  }
  refresh().finally(() => setTimeout(loop, 3000));
})();
