// A schedule's page: its definition, next fire times, fires running or waiting, the last
// outcomes (linked to the fires' workflows), and its actions, each behind a dialog that asks
// first. Refreshes every 2 s: a command shows once the process running the schedule took it.
"use strict";

(() => {
  const { el, getJSON, postJSON, when, token, workflowURL, fireTime, interval } = durable;
  const { scheduleWhen, scheduleBadge, outcomeBadge, textOf } = durable;
  const name = decodeURIComponent(location.pathname.slice("/schedules/".length));
  const ACTIONS = ["pause", "resume", "trigger", "backfill", "delete"];
  const api = "/api/schedules/" + encodeURIComponent(name);
  let last = null;  // the latest answer

  document.title = "durable · schedule " + name;
  document.getElementById("title").textContent = name;
  for (const node of document.querySelectorAll(".schedule-name")) node.textContent = name;

  function fact(label, value) {
    return value === "" || value === null || value === undefined ? null : el("div", {}, el("span", {}, label), value);
  }

  function enable() {  // which actions make sense now (and none without the token)
    const tokenless = !token();
    const allowed = {
      pause: last && !last.deleted && !last.paused,
      resume: last && !last.deleted && last.paused,
      trigger: last && !last.deleted,
      backfill: last && !last.deleted,
      delete: last && !last.deleted,
    };
    for (const action of ACTIONS) {
      const button = document.getElementById(action + "-button");
      button.disabled = tokenless || !allowed[action];
      button.title = tokenless ? "Open the address `durable ui` printed (it carries the token) to act on schedules."
        : last && last.deleted ? "The schedule is deleted." : "";
    }
  }

  function render(s) {
    last = s;
    document.getElementById("content").hidden = false;
    document.getElementById("state").replaceChildren(scheduleBadge(s.state));
    document.getElementById("when").textContent = scheduleWhen(s);
    document.getElementById("facts").replaceChildren(...[
      fact("Workflow", textOf(s, "workflow")),
      fact("When", scheduleWhen(s)),
      fact(s.deleted ? "Deleted" : "Paused", s.note ? s.note : s.paused || s.deleted ? "yes" : ""),
      fact("Arguments", s.args.length || durable.cutRef(s, "args") ? durable.shortValue(s, "args", 80) : ""),
      fact("Catch-up", `${s.catchup} (window ${interval(s.catchup_window)}` + (s.catchup === "all" ? `, limit ${s.catchup_limit})` : ")")),
      fact("Overlap", s.overlap),
      fact("Fires", `${s.fires} started` + (s.missed ? `, ${s.missed} missed` : "")),
      fact("Schedule's workflow", el("a", { href: workflowURL(s.id) }, s.id)),
      fact("Its state", s.workflow_state),
    ].filter(Boolean));
    const next = s.next_fires.map((fire) => el("tr", {}, el("td", { class: "mono" }, fireTime(fire))));
    if (!next.length) {
      next.push(el("tr", {}, el("td", { class: "muted" }, s.deleted ? "None: the schedule is deleted."
        : s.paused ? "None while paused." : "None: it never fires again.")));
    }
    document.querySelector("#next tbody").replaceChildren(...next);
    const busy = [];
    if (s.running.length) {
      busy.push(el("h2", {}, `Running (${s.total_running})`), el("div", { class: "panel" }, el("table", { class: "grid", id: "running-fires" },
        el("tbody", {}, s.running.map((id) => el("tr", {}, el("td", { class: "mono" }, el("a", { href: workflowURL(id) }, id))))))));
    }
    if (s.pending.length) {
      busy.push(el("h2", {}, `Waiting for the running fire to end (${s.total_pending})`), el("div", { class: "panel" }, el("table", { class: "grid" },
        el("tbody", {}, s.pending.map((fire) => el("tr", {}, el("td", { class: "mono" }, fireTime(fire))))))));
    }
    document.getElementById("running").replaceChildren(...busy);
    const rows = s.recent.slice().reverse().map((r) => el("tr", {},
      el("td", { class: "mono nowrap" }, fireTime(r.fire)),
      el("td", {}, r.kind),
      el("td", {}, outcomeBadge(r.outcome)),
      el("td", { class: "mono" }, r.workflow_id ? el("a", { href: workflowURL(r.workflow_id) }, r.workflow_id) : ""),
      el("td", { class: r.outcome === "failed" ? "error" : "muted" }, r.detail),
      el("td", { class: "muted nowrap" }, when(r.at)),
    ));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No fire yet.")));
    document.querySelector("#recent tbody").replaceChildren(...rows);
    document.getElementById("recent-count").textContent = s.total_recent ? `(the latest ${s.total_recent})` : "";
    document.getElementById("trigger-overlap").textContent = "overlap=" + s.overlap;
    document.getElementById("backfill-zone").textContent = s.timezone;
    enable();
  }

  async function refresh() {
    const problem = document.getElementById("problem");
    try {
      render(await getJSON(api));
      problem.replaceChildren();
    } catch (error) {
      problem.replaceChildren(last === null ? durable.unavailable("schedule", error) : el("div", { class: "notice bad" }, error.message));
    }
  }

  function wire(action, body) {
    const dialog = document.getElementById(action + "-dialog");
    const problem = document.getElementById(action + "-problem");
    document.getElementById(action + "-button").addEventListener("click", () => {
      problem.textContent = "";
      document.getElementById("notice").replaceChildren();
      dialog.showModal();
    });
    document.getElementById(action + "-close").addEventListener("click", () => dialog.close());
    document.getElementById(action + "-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.textContent = "";
      try {
        const answer = await postJSON(api + "/" + action, body());
        dialog.close();
        document.getElementById("notice").replaceChildren(el("div", { class: "notice good" }, answer.message));
        refresh();
      } catch (error) {
        problem.textContent = error.message;
      }
    });
  }

  wire("pause", () => ({ note: document.getElementById("pause-note").value }));
  wire("resume", () => ({}));
  wire("trigger", () => ({}));
  wire("backfill", () => ({
    start: document.getElementById("backfill-start").value.trim(),
    end: document.getElementById("backfill-end").value.trim(),
  }));
  wire("delete", () => ({ note: document.getElementById("delete-note").value }));
  enable();

  async function loop() {
    const live = document.getElementById("live").checked;
    if (live && !document.hidden) await refresh();
    setTimeout(loop, 2000);
  }
  refresh().finally(() => setTimeout(loop, 2000));
})();
