// The schedules page: each schedule's definition, state, next fire times and latest outcomes,
// refreshed every 3 s while "live" is on. Its actions are on the schedule's own page.
"use strict";

(() => {
  const { el, getJSON, scheduleURL, scheduleWhen, scheduleBadge, fireTime, outcomeBadge } = durable;
  const live = document.getElementById("live");

  function lastResults(schedule) {
    if (!schedule.recent.length) return el("span", { class: "muted" }, "none yet");
    return schedule.recent.slice().reverse().map((result) => el("div", { class: "nowrap" },
      outcomeBadge(result.outcome), " ",
      result.workflow_id ? el("a", { href: durable.workflowURL(result.workflow_id), title: result.detail }, fireTime(result.fire))
        : el("span", { title: result.detail }, fireTime(result.fire)),
      result.kind === "scheduled" ? "" : el("span", { class: "muted" }, " " + result.kind)));
  }

  function nextFires(schedule) {
    if (schedule.deleted) return el("span", { class: "muted" }, "deleted");
    if (schedule.paused) return el("span", { class: "muted" }, "paused" + (schedule.note ? ": " + schedule.note : ""));
    return schedule.next_fires.map((fire) => el("div", { class: "nowrap" }, fireTime(fire)));
  }

  async function refresh() {
    const problem = document.getElementById("problem");
    let data;
    try {
      data = await getJSON("/api/schedules");
      problem.replaceChildren();
    } catch (error) {
      problem.replaceChildren(el("div", { class: "notice bad" }, "Could not read the schedules: " + error.message));
      return;
    }
    document.getElementById("directory").textContent = data.directory;
    const rows = data.schedules.map((s) => el("tr", { "data-name": s.name },
      el("td", { class: "id mono", title: s.name }, el("a", { href: scheduleURL(s.name) }, s.name)),
      el("td", {}, durable.textOf(s, "workflow")),
      el("td", {}, scheduleWhen(s)),
      el("td", {}, scheduleBadge(s.state), s.running.length ? el("div", { class: "muted" }, `${s.total_running} running`) : ""),
      el("td", {}, nextFires(s)),
      el("td", {}, String(s.fires), s.missed ? el("div", { class: "muted" }, `${s.missed} missed`) : ""),
      el("td", {}, lastResults(s)),
    ));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No schedules here yet: start one in code (durable.Schedule(...).start(runtime)).")));
    document.querySelector("#schedules tbody").replaceChildren(...rows);
    document.getElementById("count").textContent = data.total
      ? `${data.total} schedule${data.total === 1 ? "" : "s"}` + (data.total > data.schedules.length ? ` (the first ${data.schedules.length} shown)` : "") : "";
  }

  async function loop() {
    if (live.checked && !document.hidden) await refresh().catch(() => {});
    setTimeout(loop, 3000);
  }
  refresh().finally(() => setTimeout(loop, 3000));
})();
