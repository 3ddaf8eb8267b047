"""The chaos checker (todo_dev.chaos.checker) on small made-up runs: each count moves for its defect and
for nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from todo_dev.chaos.checker import PLANTS, Collected, check, plant, prove


def event(event_id: str, task_id: int, version: int, type_: str, series: tuple[int, int] | None = None,
          topic: str = "task-events", published: bool = True) -> dict[str, Any]:
    return {"id": len(event_id), "event_id": event_id, "topic": topic, "published": published, "type": type_,
            "user_id": "u", "task_id": task_id, "version": version,
            "series_id": series[0] if series else None, "occurrence": series[1] if series else None}


def call(action: str, task_id: int, version: int | None, status: int = 200, t: float = 1.0,
         function: str = "update-task") -> dict[str, Any]:
    return {"user": "u", "function": function, "action": action, "status": status, "t": t, "task_id": task_id,
            "version": version}


def audited(seq: int, event_id: str, task_id: int) -> dict[str, Any]:
    return {"seq": seq, "event_id": event_id, "task_id": task_id, "action": "x"}


def clean_run() -> Collected:
    """Task 1, the first of series 7: created, renamed, completed; on-task-event made task 2, the second."""
    outbox = [event("e1", 1, 1, "created", (7, 1)), event("e2", 1, 2, "updated", (7, 1)),
              event("e3", 1, 3, "completed", (7, 1)), event("e4", 2, 1, "created", (7, 2)),
              event("p1", 1, 1, "push.change", topic="task-updates")]
    return Collected(
        calls=[call("create_recurring", 1, 1, 201, function="create-task"), call("patch", 1, 2),
               call("complete", 1, 3), call("list", 0, None, function="query-tasks")],
        outbox=outbox,
        audit=[audited(i + 1, f"e{i + 1}", t) for i, t in enumerate((1, 1, 1, 2))],
        feed={"u": [1, 2, 3, 4]},
        sockets=[{"user": "u", "n": 0, "seqs": [1, 2]}, {"user": "u", "n": 1, "seqs": [3, 4]}],
        kafka={"task-events": {"e1": 1, "e2": 1, "e3": 1, "e4": 1}, "task-updates": {"p1": 1}},
    )


def test_a_clean_run_reports_nothing_and_is_clean() -> None:
    report = check(clean_run())
    assert report.failures == 0
    assert report.server_errors == 0
    assert report.clean
    assert report.http["update-task"]["calls"] == 2


def test_an_acknowledged_change_without_its_outbox_event_is_lost() -> None:
    data = clean_run()
    data.calls.append(call("patch", 1, 4))
    assert check(data).lost["event"] == 1


def test_an_acknowledged_delete_is_owed_a_deleted_event() -> None:
    data = clean_run()
    data.calls.append(call("delete", 2, None, 204))
    assert check(data).lost["event"] == 1
    data.outbox.append(event("e5", 2, 1, "deleted", (7, 2)))
    data.audit.append({"seq": 5, "event_id": "e5", "task_id": 2, "action": "x"})
    data.kafka["task-events"]["e5"] = 1
    data.outbox.append(event("e6", 3, 1, "created", (7, 3)))  # the delete of instance 2 made instance 3
    data.audit.append({"seq": 6, "event_id": "e6", "task_id": 3, "action": "x"})
    data.kafka["task-events"]["e6"] = 1
    assert check(data).failures == 0


def test_a_failed_write_is_owed_nothing() -> None:
    data = clean_run()
    data.calls.append(call("patch", 1, None, 503, t=50.0))
    assert check(data).lost["event"] == 0


def test_an_event_the_trail_never_recorded_is_lost() -> None:
    data = clean_run()
    data.audit = [e for e in data.audit if e["event_id"] != "e2"]
    assert check(data).lost["audit"] == 1


def test_a_row_marked_published_but_absent_from_kafka_is_lost() -> None:
    data = clean_run()
    del data.kafka["task-events"]["e3"]
    assert check(data).lost["kafka"] == 1


def test_a_row_never_published_fails_the_run() -> None:
    data = clean_run()
    data.outbox.append(event("e9", 9, 1, "created", published=False))
    report = check(data)
    assert report.unpublished == 1
    assert report.failures >= 1


def test_a_feed_seq_that_reached_no_socket_is_a_lost_push() -> None:
    data = clean_run()
    data.feed["u"].append(5)
    assert check(data).lost["push"] == 1


def test_a_seq_twice_on_one_socket_is_a_duplicate_and_a_step_back_is_reordered() -> None:
    data = clean_run()
    data.sockets[0]["seqs"] = [1, 2, 2]
    data.sockets[1]["seqs"] = [4, 3]
    report = check(data)
    assert report.duplicated["socket_seq"] == 1
    assert report.reordered["socket"] == 1


def test_the_same_seq_on_two_sockets_of_a_user_is_no_duplicate() -> None:
    data = clean_run()
    data.sockets.append({"user": "u", "n": 2, "seqs": [1, 2, 3, 4]})  # a second tab
    assert check(data).failures == 0


def test_an_event_audited_twice_is_a_duplicated_effect() -> None:
    data = clean_run()
    data.audit.append({"seq": 5, "event_id": "e2", "task_id": 1, "action": "x"})
    report = check(data)
    assert report.duplicated["audit"] == 1


def test_a_delete_recorded_before_the_create_is_an_order_violation() -> None:
    data = clean_run()
    data.outbox.append(event("e5", 5, 1, "created"))
    data.outbox.append(event("e6", 5, 1, "deleted"))
    data.kafka["task-events"] |= {"e5": 1, "e6": 1}
    data.audit += [{"seq": 10, "event_id": "e6", "task_id": 5, "action": "x"},
                   {"seq": 11, "event_id": "e5", "task_id": 5, "action": "x"}]
    assert check(data).reordered["trail"] == 1


def test_versions_audited_out_of_order_are_an_order_violation() -> None:
    data = clean_run()
    data.audit[1]["seq"], data.audit[2]["seq"] = data.audit[2]["seq"], data.audit[1]["seq"]  # v3 before v2
    assert check(data).reordered["trail"] == 1


def test_a_trail_that_arrived_out_of_order_is_read_in_the_order_of_the_versions_its_entries_keep() -> None:
    data = clean_run()
    data.outbox.append(event("e5", 5, 1, "created"))
    data.outbox.append(event("e6", 5, 1, "deleted"))
    data.kafka["task-events"] |= {"e5": 1, "e6": 1}
    data.audit += [{"seq": 10, "event_id": "e6", "task_id": 5, "action": "task.deleted", "task_version": 1},
                   {"seq": 11, "event_id": "e5", "task_id": 5, "action": "task.created", "task_version": 1}]
    assert check(data).reordered["trail"] == 0
    data.audit[-1]["task_version"] = 2  # an entry that says the wrong version is out of place
    assert check(data).reordered["trail"] == 1


def test_a_closed_instance_without_its_successor_is_a_lost_next_instance_unless_the_series_ended() -> None:
    data = clean_run()
    data.outbox = [r for r in data.outbox if r["event_id"] != "e4"]
    data.audit = [e for e in data.audit if e["event_id"] != "e4"]
    assert check(data).lost["next_instance"] == 1
    data.ended_series = [7]
    assert check(data).lost["next_instance"] == 0


def test_one_instance_with_two_successors_is_a_double_advance() -> None:
    data = clean_run()  # instance 2 made, deleted, then made again from a late event: defect 1's shape
    data.outbox += [event("e5", 2, 1, "deleted", (7, 2)), event("e6", 3, 1, "created", (7, 3)),
                    event("e7", 4, 1, "created", (7, 3))]
    data.audit += [audited(5 + i, f"e{5 + i}", t) for i, t in enumerate((2, 3, 4))]
    data.kafka["task-events"] |= {"e5": 1, "e6": 1, "e7": 1}
    assert check(data).duplicated["next_instance"] == 1


def test_an_event_on_kafka_twice_is_republished_which_is_allowed() -> None:
    data = clean_run()
    data.kafka["task-events"]["e1"] = 2
    report = check(data)
    assert report.republished == 1
    assert report.failures == 0


def test_a_5xx_counts_unless_its_function_was_deliberately_down() -> None:
    data = clean_run()
    data.faults = [{"kind": "kill", "target": "update-task", "start": 10.0, "end": 14.0}]
    data.calls += [call("patch", 1, None, 502, t=12.0), call("patch", 1, None, 0, t=30.0),
                   call("list", 0, None, 500, t=12.0, function="query-tasks"), call("patch", 1, 2, 200, t=31.0)]
    report = check(data)
    assert report.http["update-task"] == {"calls": 5, "5xx": 0, "unanswered": 1, "during_outage": 1,
                                          "down_s": pytest.approx(19.0), "resent": 0}
    assert report.http["query-tasks"]["5xx"] == 1
    assert report.server_errors == 2
    assert not report.clean


def test_a_503_while_the_database_restarts_is_unavailability_but_a_500_is_a_server_error() -> None:
    data = clean_run()
    data.faults = [{"kind": "restart", "target": "postgres", "start": 10.0, "end": 13.0}]
    data.calls.append(call("create", 9, None, 503, t=11.0, function="create-task"))
    assert check(data).server_errors == 0
    data.calls.append(call("create", 9, None, 500, t=11.5, function="create-task"))
    assert check(data).http["create-task"]["5xx"] == 1


def test_a_request_sent_just_before_an_outage_and_failed_by_it_is_unavailability() -> None:
    data = clean_run()
    data.faults = [{"kind": "restart", "target": "postgres", "start": 10.0, "end": 13.0}]
    data.calls.append({**call("create", 9, None, 503, t=9.8, function="create-task"), "done": 10.1})
    data.calls.append({**call("create", 9, None, 503, t=9.0, function="create-task"), "done": 9.5})
    assert check(data).http["create-task"]["during_outage"] == 1
    assert check(data).http["create-task"]["5xx"] == 1


@pytest.mark.parametrize("kind", PLANTS)
def test_each_planted_defect_is_found_in_a_clean_run(kind: str) -> None:
    assert prove(clean_run())[kind]


@pytest.mark.parametrize("kind", PLANTS)
def test_each_planted_defect_is_found_even_when_nothing_was_collected(kind: str) -> None:
    assert prove(Collected())[kind]


def test_planting_leaves_the_collected_data_untouched() -> None:
    data = clean_run()
    before = data.to_json()
    for kind in PLANTS:
        plant(data, kind)
    assert data.to_json() == before
