"""The `durable` command: list, show, events, send, cancel and ui's guard, on real journals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from click.testing import CliRunner

import durable
from durable._cli import main
from durable._encoding import encode
from durable._engine import _records as records
from tests.conftest import journal_bytes

from .sample_app import ORDERS, Order, order_workflow


def durable_cli(*args: str, directory: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--dir", str(directory)], catch_exceptions=False)
    return result.exit_code, result.output


def test_list_shows_a_table_newest_first(sample_dir: Path) -> None:
    code, output = durable_cli("list", directory=sample_dir)
    assert code == 0
    lines = output.splitlines()
    assert lines[0].split()[:4] == ["ID", "WORKFLOW", "STATE", "STEPS"]
    ids = [line.split()[0] for line in lines[1:] if line.startswith("order-")]
    assert sorted(ids) == sorted(ORDERS)
    assert ids[0] == "order-5"
    assert ids[-2:] == ["order-2", "order-7"]
    assert "waiting for event 'approved'" in output
    assert "ActivityError: activity 'charge_payment'" in output


def test_list_filters_and_prints_json(sample_dir: Path) -> None:
    code, output = durable_cli("list", "--status", "failed", "--json", directory=sample_dir)
    assert code == 0
    data = json.loads(output)
    assert [w["id"] for w in data["workflows"]] == ["order-2"]
    assert data["workflows"][0]["state"] == "failed"
    code, output = durable_cli("list", "--search", "nothing-like-this", directory=sample_dir)
    assert (code, output.strip()) == (0, f"no matching workflows in {sample_dir}")
    code, output = durable_cli("list", "--status", "bogus", directory=sample_dir)
    assert code == 2
    assert "bogus" in output


def test_list_of_an_empty_or_missing_directory(tmp_path: Path) -> None:
    code, output = durable_cli("list", directory=tmp_path)
    assert (code, output.strip()) == (0, f"no workflows in {tmp_path}")
    code, output = durable_cli("list", directory=tmp_path / "typo")
    assert code == 1
    assert f"no journal directory at {tmp_path / 'typo'}" in output


def test_show_draws_the_timeline(sample_dir: Path) -> None:
    code, output = durable_cli("show", "order-7", directory=sample_dir)
    assert code == 0
    assert "completed" in output
    assert '"shipped 7 (auto)"' in output
    assert "#1 ConnectionError" in output
    assert "#3 ok" in output
    assert "reserve_stock" in output
    assert "fired" in output
    assert "payment API timed out (attempt 2)" in output  # the last activity error's traceback
    code, output = durable_cli("show", "order-2", directory=sample_dir)
    assert code == 0
    assert "workflow error" in output
    assert "Traceback" in output


def test_show_pages_and_json(sample_dir: Path) -> None:
    code, output = durable_cli(
        "show", "order-7", "--from", "1", "--limit", "2", directory=sample_dir
    )
    assert code == 0
    assert re.search(r"\nsteps +1-2 of 4 shown", output)
    assert "charge_payment  completed" not in output
    assert "reserve_stock" in output
    code, output = durable_cli("show", "order-7", "--json", directory=sample_dir)
    data = json.loads(output)
    assert data["workflow"]["state"] == "completed"
    assert [s["name"] for s in data["history"]["steps"]][:1] == ["charge_payment"]
    assert len(data["history"]["steps"][0]["attempts"]) == 3


def test_unknown_and_invalid_ids_are_clear_errors(sample_dir: Path) -> None:
    code, output = durable_cli("show", "order-999", directory=sample_dir)
    assert code == 1
    assert "order-999" in output
    assert "Error:" in output
    code, output = durable_cli("show", "../../etc", directory=sample_dir)
    assert code == 1
    assert "invalid workflow id" in output


def test_send_then_resume_takes_the_event(sample_dir: Path) -> None:
    code, output = durable_cli("send", "order-3", "approved", '"by phone"', directory=sample_dir)
    assert code == 0
    assert output.startswith("sent event 'approved' to order-3: no process holds it now")
    code, output = durable_cli(
        "send", "order-3", "approved", "1", "--event-id", "e1", directory=sample_dir
    )
    assert code == 0
    code, output = durable_cli(
        "send", "order-3", "approved", "2", "--event-id", "e1", directory=sample_dir
    )
    assert "not sent: event id 'e1' was already sent" in output
    code, output = durable_cli("events", "order-3", directory=sample_dir)
    assert code == 0
    assert "not yet" in output
    assert "by phone" in output

    async def resume() -> str:
        async with durable.Runtime(sample_dir) as runtime:
            return await runtime.run(order_workflow, ORDERS["order-3"], id="order-3")

    assert asyncio.run(resume()) == "shipped 3 (by phone)"
    code, output = durable_cli("events", "order-3", "--json", directory=sample_dir)
    # (both received: the second waits, buffered in the workflow, for a wait that never comes)
    assert [m["received"] for m in json.loads(output)] == [True, True]


def test_send_refuses_bad_json_and_finished_workflows(sample_dir: Path) -> None:
    code, output = durable_cli("send", "order-3", "approved", "{nope", directory=sample_dir)
    assert code == 2
    assert "not JSON" in output
    code, output = durable_cli("send", "order-7", "approved", directory=sample_dir)
    assert code == 1
    assert "already completed" in output
    assert not (sample_dir / "order-7.inbox").exists()


def test_cancel_asks_first_then_cancels(sample_dir: Path) -> None:
    result = CliRunner().invoke(main, ["cancel", "order-4", "--dir", str(sample_dir)], input="n\n")
    assert result.exit_code == 1
    assert "Aborted" in result.output
    assert not (sample_dir / "order-4.inbox").exists()
    code, output = durable_cli(
        "cancel", "order-4", "--yes", "--reason", "test", directory=sample_dir
    )
    assert code == 0
    assert "cancellation sent" in output

    async def resume() -> None:
        async with durable.Runtime(sample_dir) as runtime:
            await runtime.run(order_workflow, ORDERS["order-4"], id="order-4")

    with pytest.raises(durable.WorkflowCancelled):
        asyncio.run(resume())
    code, output = durable_cli("list", "--status", "cancelled", "--json", directory=sample_dir)
    assert {w["id"] for w in json.loads(output)["workflows"]} == {"order-4", "order-5"}


def test_ui_refuses_a_non_loopback_host_without_the_flag(sample_dir: Path) -> None:
    code, output = durable_cli("ui", "--host", "0.0.0.0", directory=sample_dir)
    assert code == 2
    assert "--allow-remote" in output


def test_console_script_and_python_m(sample_dir: Path) -> None:
    for command in (
        [sys.executable, "-m", "durable"],
        [str(Path(sys.executable).parent / "durable")],
    ):
        done = subprocess.run(
            [*command, "list", "--dir", str(sample_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "order-3" in done.stdout


def test_text_from_journals_is_shown_not_obeyed(sample_dir: Path) -> None:
    """Rich markup and terminal escapes in names, payloads and errors are printed as text."""
    hostile = "[bold]x[/] [link=http://evil]y[/link] [/oops] \x1b]0;pwned\x07 \x1b[2J"

    async def send() -> None:
        async with durable.Runtime(sample_dir) as runtime:
            await runtime.send_event("order-3", hostile, {"note": hostile})

    asyncio.run(send())
    code, output = durable_cli("events", "order-3", directory=sample_dir)
    assert code == 0
    assert "[/oops]" in output
    assert "\x1b" not in output
    assert "\\x1b]0;pwned\\x07" in output
    code, output = durable_cli("show", "order-3", directory=sample_dir)
    assert code == 0


def test_a_stalled_workflow_is_told_apart(sample_dir: Path) -> None:
    """Journaled as running an activity, but no process holds it: `list` says stalled."""

    async def add_running_step() -> None:
        # order-3's records under another id (a copied file would be another file's
        # journal: moved aside, see JournalMisplaced), then a step still running.
        async with durable.JournalDirectory(sample_dir) as store:
            opened = await store.open("order-9")
            for record in await store.read("order-3"):
                opened.write(record.payload)
            opened.write(encode({"k": "sched", "s": 9, "a": "slow", "d": "x", "n": 1, "t": 2e9}))
            await opened.close()

    asyncio.run(add_running_step())
    code, output = durable_cli("list", "--json", directory=sample_dir)
    described = {w["id"]: w for w in json.loads(output)["workflows"]}
    assert described["order-9"]["state"] == "running"
    assert described["order-9"]["stalled"] is True
    assert described["order-3"]["stalled"] is False
    code, output = durable_cli("list", directory=sample_dir)
    assert code == 0
    assert "STALLED, no process holds it" in output
    code, output = durable_cli("show", "order-9", directory=sample_dir)
    assert code == 0
    assert "none: stalled, it resumes when a runtime runs it again" in output


def test_show_past_the_last_step_says_so(sample_dir: Path) -> None:
    code, output = durable_cli("show", "order-7", "--from", "10", directory=sample_dir)
    assert code == 0
    assert "none from step 10: it has 4 (0-3)" in output


def test_cancel_of_a_finished_workflow_does_not_ask(sample_dir: Path) -> None:
    result = CliRunner().invoke(main, ["cancel", "order-7", "--dir", str(sample_dir)])
    assert result.exit_code == 1
    assert "already completed: nothing to cancel" in result.output
    assert "cancel order-7" not in result.output


def test_ui_on_a_busy_port_says_so_in_one_line(sample_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = durable_cli("ui", "--port", str(port), directory=sample_dir)
    assert code == 1
    assert output.strip() == (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; try another --port"
    )


ODD_IDS = {"-rf": ORDERS["order-3"], "--help": ORDERS["order-5"], "-x": ORDERS["order-4"]}


@pytest.fixture
def odd_dir(sample_dir: Path) -> Path:
    """The sample, plus workflows whose ids look like options: two waiting, one sleeping."""

    async def start() -> None:
        async with durable.Runtime(sample_dir, suspend_after=None) as runtime:
            for workflow_id, order in ODD_IDS.items():
                await runtime.start(order_workflow, order, id=workflow_id)
                while (await runtime.describe(workflow_id)).state is durable.WorkflowState.RUNNING:
                    await asyncio.sleep(0.01)

    asyncio.run(start())
    return sample_dir


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_ids_that_start_with_a_dash_go_after_double_dash(odd_dir: Path) -> None:
    where = ("--dir", str(odd_dir))
    code, output = cli("show", *where, "--", "-rf")
    assert code == 0, output
    assert "(-rf)" in output
    assert "waiting for event 'approved'" in output
    code, output = cli("show", *where, "--json", "--", "--help")
    assert code == 0, output
    assert json.loads(output)["workflow"]["id"] == "--help"
    assert cli("events", *where, "--", "-rf") == (0, "nothing was sent to -rf\n")
    code, output = cli("send", *where, "--", "--help", "approved", '"yes"')
    assert code == 0, output
    assert output.startswith("sent event 'approved' to --help:")
    code, output = cli("send", *where, "--event-id", "-e", "--", "-rf", "-approved", "-1")
    assert code == 0, output
    code, output = cli("events", *where, "--json", "--", "-rf")
    assert [(m["name"], m["payload"], m["message_id"]) for m in json.loads(output)] == [
        ("-approved", -1, "-e")
    ]
    code, output = cli("cancel", *where, "--yes", "--reason", "-because", "--", "-x")
    assert code == 0, output
    assert output.startswith("cancellation sent to -x:")
    code, output = cli("list", *where, "--json")
    assert {"-rf", "--help", "-x"} <= {w["id"] for w in json.loads(output)["workflows"]}

    async def resume() -> tuple[str, BaseException | None]:
        async with durable.Runtime(odd_dir) as runtime:
            shipped = await runtime.run(order_workflow, ODD_IDS["--help"], id="--help")
            try:
                await runtime.run(order_workflow, ODD_IDS["-x"], id="-x")
            except durable.WorkflowCancelled as cancelled:
                return shipped, cancelled
            return shipped, None

    shipped, cancelled = asyncio.run(resume())
    assert shipped == "shipped 5 (yes)"  # (the event reached the workflow named --help)
    assert "-because" in str(cancelled)


@pytest.mark.parametrize(
    ("args", "dashed", "suggested"),
    [
        (["show", "-rf"], "-rf", "-- -rf"),
        (["events", "--json", "-rf"], "-rf", "-- -rf"),
        (["send", "-rf", "approved"], "-rf", "-- -rf approved"),
        (["send", "--event-id", "e1", "-x", "approved", "1"], "-x", "-- -x approved 1"),
        (["send", "order-3", "approved", "-1"], "-1", "-- order-3 approved -1"),
        (["cancel", "-x", "--yes"], "-x", "-- -x"),
        (["cancel", "--reason", "r", "-x"], "-x", "-- -x"),
    ],
)
def test_a_dashed_id_without_double_dash_says_to_use_it(
    odd_dir: Path, args: list[str], dashed: str, suggested: str
) -> None:
    before = files_of(odd_dir)
    code, output = cli(*args, "--dir", str(odd_dir))
    assert code == 2
    assert f"no such option: {dashed}. If '{dashed}' is a workflow id" in output
    assert f"put the arguments after `--`, the options before it: main {args[0]}" in output
    assert output.rstrip().endswith(f"[OPTIONS] {suggested}")
    assert files_of(odd_dir) == before  # (nothing sent, nothing cancelled)


def test_the_help_says_where_dashed_ids_go() -> None:
    for command in ("show", "events", "send", "cancel"):
        code, output = cli(command, "--help")
        assert code == 0
        assert "starts with '-' goes after `--`" in output
    code, output = cli("--help")
    assert "goes after `--`" in output
    code, output = cli("show", "--jsn", "x")  # (a mistyped option is still one)
    assert code == 2
    assert "Did you mean '--json'?" in output or "did you mean --json?" in output


def test_the_ui_help_says_reads_need_the_token_too() -> None:
    code, output = cli("ui", "--help")
    assert code == 0
    assert "Every API request, reads as much as" in " ".join(output.split())


def test_a_payload_too_deep_to_print_is_one_line(sample_dir: Path) -> None:
    code, output = durable_cli("send", "order-3", "deep", "[" * 100_000, directory=sample_dir)
    assert code == 2
    assert "nested too deep to read" in output
    code, output = durable_cli(
        "send", "order-3", "deep", "[" * 900 + "]" * 900, directory=sample_dir
    )  # (legal: it is sent)
    assert code == 0, output
    for args in (["events", "order-3"], ["events", "order-3", "--json"]):
        with recursion_headroom(500):
            code, output = durable_cli(*args, directory=sample_dir)
        assert code == 1
        assert output.strip().startswith("Error: a value in this journal nests too deep")


@contextlib.contextmanager
def recursion_headroom(frames: int) -> Iterator[None]:
    """Lets the code inside recurse only `frames` Python frames deeper than here.

    A value 900 deep is too deep to print under the default limit (1,000) on Python 3.11,
    whose comprehensions take a frame of their own (two per level); from 3.12 (PEP 709) they
    take none, and it prints. With less headroom it is too deep on every Python.
    """
    depth = 0
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def _two_queued(directory: Path) -> None:
    """Two requests waiting in a queue no runtime serves (a runtime that only enqueues)."""

    async def enqueue() -> None:
        queue = durable.Queue("unserved", concurrency=1)
        async with durable.Runtime(directory) as runtime:
            for number in (1, 2):
                await runtime.enqueue(queue, order_workflow, Order(number, 9.5), id=f"q-{number}")

    asyncio.run(enqueue())


def test_show_tells_a_queued_workflows_place_and_why_it_waits(tmp_path: Path) -> None:
    _two_queued(tmp_path)
    code, output = durable_cli("show", "q-2", directory=tmp_path)
    assert code == 0, output
    assert "queued" in output
    assert "2 of 2" in output
    assert "a runtime that serves this queue" in output
    assert "enqueued" in output
    assert "not found" not in output
    code, output = durable_cli("show", "--json", "q-2", directory=tmp_path)
    shown = json.loads(output)
    assert shown["workflow"]["state"] == "queued"
    assert shown["workflow"]["status"]["position"] == 2
    assert shown["history"]["arguments"] == [{"number": 2, "amount": 9.5}]
    code, output = durable_cli("show", "q-3", directory=tmp_path)
    assert code == 1
    assert "q-3" in output


def test_show_source_gives_each_steps_call_site_and_excerpt(sample_dir: Path) -> None:
    code, output = durable_cli("show", "order-7", "--source", directory=sample_dir)
    assert code == 0
    app = "sample_app.py"
    assert "#0 activity charge_payment  " in output
    assert f"{app}:51 in order_workflow" in output  # payment = await charge_payment(order)
    assert f"{app}:53 in order_workflow" in output  # await reserve_stock(order)
    assert f"{app}:59 in order_workflow" in output  # await durable.sleep(...)
    assert "→   51 │     payment = await charge_payment(order)" in output
    code, plain = durable_cli("show", "order-7", directory=sample_dir)
    assert "in order_workflow" not in plain  # (only asked for)
    code, output = durable_cli("show", "order-7", "--source", "--json", directory=sample_dir)
    steps = json.loads(output)["history"]["steps"]
    site = steps[0]["site"]
    assert site["file"].endswith(app)
    assert (site["line"], site["function"]) == (51, "order_workflow")
    assert [51, "    payment = await charge_payment(order)"] in site["excerpt"]
    assert [s["site"]["line"] for s in steps] == [51, 52, 53, 59]  # (52: set_status)


def test_show_source_of_a_journal_without_sites(tmp_path: Path) -> None:
    directory = tmp_path / "journals"
    directory.mkdir(mode=0o700)
    start = records.start("old", "old-1", [], 1.8e9, 7)
    done = records.done(0, "step", "ab", 1, now=1.8e9 + 1, result=1)  # no call site (older)
    (directory / "old-1.journal").write_bytes(journal_bytes(encode(start), encode(done)))
    code, output = durable_cli("show", "old-1", "--source", directory=directory)
    assert code == 0, output
    assert "no call sites journaled" in output
