"""A short chaos run on the system tests' stack: a minute of paced mixed load by ten users with their
WebSockets open, one fault of each kind (todo_dev.chaos.faults.short), then the checker of `make chaos`.
The long run, with every consumer and every sidecar killed, is `make chaos` (docs/reliability.md)."""

from __future__ import annotations

import pytest

from todo_dev.chaos.faults import short
from todo_dev.chaos.load import Plan
from todo_dev.chaos.run import chaos, table
from todo_dev.stack import Stack

pytestmark = pytest.mark.system


# The load, the faults and the settling (a consumer that was killed catches up after its backoff) take
# three to five minutes on two cores.
@pytest.mark.timeout(900)
def test_under_one_fault_of_each_kind_nothing_is_lost_duplicated_or_out_of_order(stack: Stack) -> None:
    outcome = chaos(stack, Plan(users=10, writes_per_second=20.0, seconds=60.0), short())
    print(table(outcome))
    assert outcome.proven, f"the checker missed a planted defect: {outcome.proof}"
    assert not outcome.fault_errors, outcome.fault_errors
    assert outcome.settled_after is not None, f"never settled: {outcome.last_lag}\n{table(outcome)}"
    report = outcome.report
    # Every promise, the trail's order included (issue 11's defect 2): lost, duplicated, reordered, unpublished.
    assert report.failures == 0, f"{table(outcome)}\n{report.examples}"
    assert report.server_errors == 0, f"{table(outcome)}\n{report.examples}"
