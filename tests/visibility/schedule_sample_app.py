"""A schedule served by a process, as an application's would be, for the UI's browser test.

    python schedule_sample_app.py JOURNAL_DIR     run the schedule "reports" until stopped

"reports" fires at 02:00 Europe/Berlin each day; at its first start it is triggered once,
so that its page has an outcome to show. Prints "started" once it runs the schedule.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

import durable


@durable.workflow(name="report")
async def report(fire: datetime) -> str:
    return f"report for {fire.isoformat()}"


SCHEDULE = durable.Schedule("reports", report, cron="0 2 * * *", timezone="Europe/Berlin")


async def main(directory: str) -> None:
    async with durable.Runtime(directory, event_poll_interval="0.1 s") as runtime:
        handle = await SCHEDULE.start(runtime)
        if not (await handle.describe()).recent:
            await handle.trigger()
        print("started", flush=True)
        await asyncio.Event().wait()  # (until terminated)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
