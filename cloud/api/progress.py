"""A long action's progress as the API shows it (read from the process's board)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cloud.progress import BOARD


class ProgressOut(BaseModel):
    phase: str = Field(description="What it is doing now; done when finished, failed when it "
                       "stopped on an error.")  # fmt: skip
    done: int
    total: int = Field(description="The phase's items (leases, meters, bills, rows).")
    finished: bool


def latest(key: str) -> ProgressOut | None:
    found = BOARD.get(key)
    return None if found is None else ProgressOut.model_validate(found, from_attributes=True)
