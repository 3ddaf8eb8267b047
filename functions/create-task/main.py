"""create-task: POST /tasks."""

from __future__ import annotations

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from todo.edge.http import Call, HttpFunction, Reply
from todo.edge.schemas import TaskWrite
from todo.edge.tasks_api import task_reply
from todo.service import tasks

fn = HttpFunction("create-task")


@fn.handler("createTask")
def create(call: Call) -> Reply:
    fields = call.model(TaskWrite).to_domain()
    return task_reply(tasks.create_task(call.runtime.writing_uow(), call.context(), fields), 201)


@aio.http
async def create_task(request: Request) -> Response:
    return await fn(request)
