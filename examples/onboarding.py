"""User onboarding: wait for the user to verify their email, remind them, give up politely.

    python examples/onboarding.py

The workflow sends a welcome email, then waits for the "email-verified" event. Every
REMINDER_AFTER without it, it sends a reminder (up to two); then it closes the account.
The waits are durable timers: a restart neither resets nor extends them. Two users: one
verifies after the first reminder, one never does. Journals live in $DURABLE_DIR.
"""

from __future__ import annotations

import asyncio
import time

import durable

REMINDER_AFTER = "0.3 s"  # "2 days" in production


@durable.activity
async def send_mail(user: str, subject: str) -> None:
    """An email (an SMTP or API call in real life)."""
    print(f"  mail to {user}: {subject}", flush=True)


@durable.activity
async def close_account(user: str) -> None:
    """Give up on an unverified sign-up."""
    print(f"  closed the account of {user}", flush=True)


@durable.workflow
async def onboarding(user: str) -> str:
    """Welcome, then up to two reminders; active once verified, else closed."""
    await send_mail(user, "welcome! please verify your email")
    for reminder in range(3):
        durable.set_status(f"waiting for verification (reminders sent: {reminder})")
        try:
            verified = await durable.wait_for_event("email-verified", timeout=REMINDER_AFTER)
        except durable.EventTimeout:
            if reminder < 2:
                await send_mail(user, f"reminder {reminder + 1}: please verify your email")
            continue
        await send_mail(user, f"thanks, verified from {verified['ip']}")
        return "active"
    await close_account(user)
    return "closed"


async def main() -> None:
    """Two users: Ada verifies after the first reminder, Bob never does."""
    stamp = int(time.time() * 1000)
    async with durable.Runtime() as runtime:
        keen = await runtime.start(onboarding, "ada@example.com", id=f"onboard-ada-{stamp}")
        silent = await runtime.start(onboarding, "bob@example.com", id=f"onboard-bob-{stamp}")
        await asyncio.sleep(0.45)  # after Ada's first reminder
        await runtime.send_event(keen.id, "email-verified", {"ip": "203.0.113.7"})
        print(f"ada: {await keen.result()}")
        print(f"bob: {await silent.result()}")


if __name__ == "__main__":
    asyncio.run(main())
