"""Python 3.11's TaskGroup can drop its parent's cancellation.

When one child has already failed, the group is aborting, and a cancel of the parent that
arrives while it waits for the other children to finish is caught and not raised again
(CPython gh-116720, fixed in 3.12 and 3.13): the group raises the child's error instead, and a
loop that retries on that error (a reconnect loop) went on with nobody left to stop it. The
cancel is still counted on the task, so such a loop asks before it retries.
"""

from __future__ import annotations

import asyncio


def cancel_requested() -> bool:
    """The current task has been cancelled and has not (yet) ended for it."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
