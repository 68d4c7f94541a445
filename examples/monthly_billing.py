"""Bill every account at 02:00 Europe/Berlin on the 1st of each month, with a backfill.

    python examples/monthly_billing.py          # a demo: five months in virtual time
    python examples/monthly_billing.py serve    # production: run the schedule for real

The schedule fires `bill_month(fire_time)` at each fire time, as a workflow of its own
with the id `monthly-billing@<fire time in UTC>`: one bill run per month, however often
the process restarts, crashes or runs twice. The demo runs on durable.testing's
TestRuntime (virtual time: months in milliseconds, real journals in a fresh temporary
directory): it starts in mid January 2026, backfills the four bill runs due before the
schedule existed (October 1 to January 1), then lets time run to mid May. Note April:
summer time began on March 29, so 02:00 Berlin is 00:00 UTC. `serve` keeps its journals
in $DURABLE_DIR (default ./.durable).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import durable
from durable.testing import TestRuntime

BERLIN = ZoneInfo("Europe/Berlin")
ACCOUNTS = ("ada", "grace")


@durable.activity
async def charge(account: str, period: str) -> str:
    """Charge an account for a month (a payment API call, keyed for idempotency)."""
    key = durable.activity_info().idempotency_key
    print(f"  billed {account} for {period} (key {key})", flush=True)
    return f"invoice-{account}-{period}"


@durable.workflow
async def bill_month(fire: datetime) -> list[str]:
    """Bill the month that ended before `fire` (02:00 on the 1st, Berlin time)."""
    period = (fire - timedelta(days=1)).strftime("%Y-%m")
    return [await charge(account, period) for account in ACCOUNTS]


BILLING = durable.Schedule(
    "monthly-billing",
    bill_month,
    cron="0 2 1 * *",
    timezone="Europe/Berlin",
    catchup="all",  # months missed while no process ran are billed, oldest first
    overlap="queue_one",  # a slow month delays the next one; it never overlaps it
)


async def demo() -> None:
    """Eight bill runs in virtual time, four of them backfilled."""
    start = datetime(2026, 1, 15, 9, tzinfo=BERLIN)
    async with TestRuntime(tempfile.mkdtemp(), start_time=start) as runtime:
        handle = await BILLING.start(runtime)
        count = await handle.backfill(datetime(2025, 10, 1, tzinfo=BERLIN), runtime.now())
        print(f"backfilling {count} bill runs, from before the schedule existed:")
        await runtime.idle()
        print("then the schedule, as time passes:")
        await runtime.advance(datetime(2026, 5, 15, tzinfo=BERLIN) - runtime.now())
        described = await handle.describe(next_fires=2)
        for result in described.recent:
            print(f"{result.workflow_id}: {result.kind} {result.outcome} {result.detail}")
        print("next:", ", ".join(when.isoformat() for when in described.next_fires))


async def serve() -> None:
    """What a production process does: start the schedule, then keep running it."""
    async with durable.Runtime() as runtime:
        handle = await BILLING.start(runtime)  # idempotent: every process, every start-up
        described = await handle.describe(next_fires=1)
        print(f"next bill run: {described.next_fires[0].isoformat()} (Ctrl-C to stop)")
        await asyncio.Event().wait()  # the schedule runs meanwhile; `durable schedule ...`


if __name__ == "__main__":
    asyncio.run(serve() if sys.argv[1:] == ["serve"] else demo())
