// The list page: filters, search, pages of 100, refreshed every 3 s while "live" is on.
"use strict";

(() => {
  const { el, getJSON, badge, whenShort, shortValue, textOf, workflowURL } = durable;
  const PAGE = 100;
  const params = new URLSearchParams(location.search);
  const status = document.getElementById("status");
  const search = document.getElementById("search");
  const live = document.getElementById("live");
  let offset = Number(params.get("offset") || 0);
  status.value = params.get("status") || "";
  search.value = params.get("search") || "";

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
    const query = new URLSearchParams({ offset, limit: PAGE });
    if (status.value) query.set("status", status.value);
    if (search.value.trim()) query.set("search", search.value.trim());
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
      el("td", { class: "id mono", title: w.id }, el("a", { href: workflowURL(w.id) }, w.id)),
      el("td", {}, textOf(w, "workflow")),
      el("td", {}, badge(w.state)),
      el("td", {}, String(w.steps)),
      el("td", { class: w.error || w.stalled ? "error" : "muted" }, now(w)),
      el("td", { class: "muted nowrap", title: durable.when(w.started) }, whenShort(w.started)),
      el("td", { class: "muted nowrap", title: durable.when(w.updated) }, whenShort(w.updated)),
    ));
    if (!rows.length) {
      const filtered = status.value || search.value.trim();
      rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted" },
        filtered ? "No workflow matches." : "No workflows in this directory yet.")));
    }
    document.querySelector("#workflows tbody").replaceChildren(...rows);
    const last = Math.min(data.total, offset + data.workflows.length);
    document.getElementById("count").textContent = data.total
      ? `${offset + 1}–${last} of ${data.total} workflow${data.total === 1 ? "" : "s"}` : "";
    document.getElementById("previous").disabled = offset === 0;
    document.getElementById("next").disabled = last >= data.total;
    const unreadable = Object.entries(data.unreadable);
    document.getElementById("unreadable").replaceChildren(...(unreadable.length ? [
      el("h2", {}, `Unreadable journals (${data.total_unreadable})`),
      el("div", { class: "panel" }, el("table", { class: "grid" }, el("tbody", {},
        unreadable.map(([id, why]) => el("tr", {}, el("td", { class: "mono" }, id), el("td", {}, why)))))),
    ] : []));
  }

  function remember() {
    const query = new URLSearchParams();
    if (status.value) query.set("status", status.value);
    if (search.value.trim()) query.set("search", search.value.trim());
    if (offset) query.set("offset", offset);
    const text = query.toString();
    history.replaceState(null, "", "/" + (text ? "?" + text : ""));
  }

  let typing;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { offset = 0; remember(); refresh(); }, 200);
  });
  status.addEventListener("change", () => { offset = 0; remember(); refresh(); });
  document.getElementById("previous").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); remember(); refresh(); });
  document.getElementById("next").addEventListener("click", () => { offset += PAGE; remember(); refresh(); });

  async function loop() {
    if (live.checked && !document.hidden) await refresh().catch(() => {});
    setTimeout(loop, 3000);
  }
  refresh().finally(() => setTimeout(loop, 3000));
})();
