"""Task requests and replies shared by the HTTP functions: merge patches, ETags, representations."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..domain.errors import FieldError
from ..domain.task import Status, Task
from ..service.tasks import Change
from .http import Reply
from .problems import MALFORMED_JSON, field_errors, invalid
from .schemas import TaskPatch, TaskWrite

WRITABLE = tuple(TaskWrite.model_fields)


def task_reply(task: Task, status: int = 200) -> Reply:
    headers = {"ETag": task.etag}
    if status == 201:
        headers["Location"] = f"/tasks/{task.id}"
    return Reply(task.to_json(), status, headers)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def patch_change(patch: Any, now: datetime) -> Change:
    """The change a merge patch asks for, validated as a whole task before anything is written."""
    if not isinstance(patch, dict):
        raise MALFORMED_JSON.problem("a merge patch must be a JSON object")
    unknown = [k for k in patch if k not in TaskPatch.model_fields]
    if unknown:
        raise invalid([FieldError(k, "unknown or read-only field") for k in unknown])
    status = patch.get("status")
    if "status" in patch and status not in ("open", "completed"):
        raise invalid([FieldError("status", "must be 'open' or 'completed'")])

    def change(task: Task) -> Task:
        current = {k: v for k, v in task.to_json().items() if k in WRITABLE and v is not None}
        merged = merge_patch(current, {k: v for k, v in patch.items() if k != "status"})
        try:
            fields = TaskWrite.model_validate(merged).to_domain()
        except ValidationError as exc:
            raise invalid(field_errors(exc)) from exc
        revised = task.revise(fields, now) if fields != task.fields else task
        if status == Status.COMPLETED:
            revised = revised.complete(now)
        elif status == Status.OPEN:
            revised = revised.reopen(now)
        if revised.version > task.version + 1:  # one request, one new version
            revised = replace(revised, version=task.version + 1)
        return revised

    return change
