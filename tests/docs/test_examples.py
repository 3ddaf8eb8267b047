"""The docs' examples are run: every ```bash embedded block, in order, against a fresh `todo serve`.

A document's blocks run in one bash script (``set -euo pipefail``), so the variables one block sets
(``TOKEN``, ``H``, ``ID``) are there for the next, as in the reader's shell. The script runs from the
project root with the server's data directory, so ``.venv/bin/todo token`` mints tokens the server
accepts; ``127.0.0.1:8080`` becomes the server's port. ``curl`` is a wrapper that records the status of
every answer: a block fails on a 4xx or 5xx unless it says it shows that status (```bash embedded
status=412``, and then it must show it), or the call uses ``--fail``, where the exit status carries it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from todo_dev.ready import wait_until_ready

from ..e2e.test_embedded_server import TODO, Server
from .markdown import ROOT, Block, blocks, documents, name

VENV_BIN = Path(sys.executable).parent
DEFAULT_URL = "127.0.0.1:8080"
# A block that talks to the default port is either run here or says why it is not (not-executed).
TALKS_TO_MAKE_RUN = re.compile(r"(https?|wss?)://127\.0\.0\.1:8080")
COMMENT = re.compile(r"(^|\s)#.*$", re.MULTILINE)
CURL_SHIM = """#!/usr/bin/env bash
# Records the status of each answer for the doc test, then behaves as curl.
headers=$(mktemp)
{curl} -D "$headers" "$@"
rc=$?
status=$(tr -d '\\r' < "$headers" | awk '/^HTTP\\//{{s=$2}} END{{print s}}')
fail=0
for arg in "$@"; do
  case "$arg" in
    --fail|--fail-with-body) fail=1 ;;
    --*) ;;
    -*f*) [[ "$arg" =~ ^-[a-zA-Z]+$ ]] && fail=1 ;;
  esac
done
printf '%s %s %s\\n' "$(cat "$DOC_BLOCK")" "${{status:-none}}" "$fail" >> "$DOC_CURL_LOG"
rm -f "$headers"
exit $rc
"""


def executed(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.embedded]


DOCUMENTS = [p for p in documents() if executed(p)]


def needs(tool: str, package: str) -> str:
    """The tool's path; installed with apt-get as the other scripts install their engines."""
    found = shutil.which(tool)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, check=True, capture_output=True)
        found = shutil.which(tool)
    if found is None:
        pytest.fail(f"the doc examples need {tool}: apt-get install {package}")
    return found


class LoggedServer(Server):
    """The e2e tests' embedded server, its output kept in a file to show when an example fails."""

    def start(self) -> None:
        self.todo("migrate")
        self.log = Path(self.env["TODO_DATA_DIR"]).parent / "server.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([TODO, "serve", "--port", str(self.port)], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)
        wait_until_ready(f"{self.url}/healthz", timeout=30, process=self.proc, what="todo serve")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LoggedServer]:
    server = LoggedServer(tmp_path / "data")
    server.start()
    yield server
    server.kill()


def script(document: list[Block], port: int, marker: Path) -> str:
    parts = ["set -euo pipefail", f"cd {ROOT}"]
    for index, block in enumerate(document):
        code = block.code.replace(DEFAULT_URL, f"127.0.0.1:{port}").replace(".venv/bin/", f"{VENV_BIN}/")
        parts += [f"echo {index} > {marker}", f"printf '\\n### {block.where()}\\n'", code]
    return "\n".join(parts) + "\n"


def unexpected(document: list[Block], curl_log: str) -> list[str]:
    """What the recorded answers contradict: a failure nobody announced, an announced one not shown."""
    problems, shown = [], {i: set[int]() for i in range(len(document))}
    for line in curl_log.splitlines():
        index, status, fail = line.split()
        block = document[int(index)]
        if not status.isdigit():
            continue  # no answer at all: curl's own exit status failed the script
        code = int(status)
        shown[int(index)].add(code)
        if code >= 400 and code not in block.statuses and fail == "0":
            problems.append(f"{block.where()}: a curl got {code}, and the block does not say status={code}")
    for index, block in enumerate(document):
        for missing in sorted(block.statuses - shown[index]):
            problems.append(f"{block.where()}: says status={missing}, but no answer had it ({sorted(shown[index])})")
    return problems


@pytest.mark.e2e
@pytest.mark.parametrize("path", DOCUMENTS, ids=[name(p) for p in DOCUMENTS])
def test_every_embedded_example_of_the_document_runs_against_the_embedded_server(
        path: Path, server: LoggedServer, tmp_path: Path) -> None:
    curl, _ = needs("curl", "curl"), needs("jq", "jq")
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "curl").write_text(CURL_SHIM.format(curl=curl))
    (shims / "curl").chmod(0o755)
    marker, curl_log = tmp_path / "block", tmp_path / "curl.log"
    curl_log.touch()
    document = executed(path)
    env = {**server.env, "PATH": f"{shims}:{VENV_BIN}:{server.env['PATH']}", "DOC_BLOCK": str(marker),
           "DOC_CURL_LOG": str(curl_log)}
    ran = subprocess.run(["bash", "-c", script(document, server.port, marker)], env=env, cwd=ROOT,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    problems = unexpected(document, curl_log.read_text())
    if ran.returncode != 0:
        problems.insert(0, f"{document[int(marker.read_text())].where()}: the block exited {ran.returncode}")
    assert not problems, "\n".join([*problems, "--- output", ran.stdout[-4000:], "--- stderr", ran.stderr[-3000:],
                                    "--- server", server.log.read_text()[-3000:]])


def test_every_example_that_calls_make_run_is_executed_or_says_why_not() -> None:
    silent = [b.where() for p in documents() for b in blocks(p)
              if TALKS_TO_MAKE_RUN.search(COMMENT.sub("", b.code)) and not (b.embedded or b.not_executed)]
    assert not silent, f"mark these ```bash embedded (run by this test) or ```bash not-executed: {silent}"


def test_the_tour_and_the_api_reference_have_examples_to_run() -> None:
    ran = {name(p) for p in DOCUMENTS}
    assert {"README.md", "docs/api.md", "docs/reminders.md", "docs/live-sync.md", "docs/audit.md"} <= ran


@pytest.mark.parametrize(("statuses", "log", "complaint"), [
    (frozenset(), "0 201 0\n0 404 0\n", "got 404"),
    (frozenset({412}), "0 200 0\n", "says status=412"),
])
def test_an_unannounced_failure_or_a_missing_announced_one_is_reported(
        statuses: frozenset[int], log: str, complaint: str) -> None:
    info = ("bash", "embedded", *([f"status={','.join(map(str, sorted(statuses)))}"] if statuses else []))
    block = Block(ROOT / "README.md", 1, info, "curl ...\n")
    assert block.statuses == statuses
    assert any(complaint in p for p in unexpected([block], log))


def test_a_failure_that_the_example_checks_with_fail_is_its_own_business() -> None:
    block = Block(ROOT / "README.md", 1, ("bash", "embedded"), "until curl -sf ...; do sleep 0.2; done\n")
    assert unexpected([block], "0 404 1\n0 200 1\n") == []
