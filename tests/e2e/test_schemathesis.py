"""schemathesis over /openapi.json against `todo serve` (issue 10): once as a user, once as an auditor, every
check but two: no server error, no status the document does not list, no invalid input accepted, no
answer unlike its schema, and the transport's refusals as problems.

Left out, each for a reason the API states: ``positive_data_acceptance`` (a schema cannot say that a
cursor must be one the server issued, that an If-Match must name the current version, or that a
recurring task needs a due_at: those are 400, 412 and 422 by design) and ``use_after_free`` (a deleted
task's history stays readable: GET /tasks/{id}/history, docs/api.md).

Bounded to fit CI: 12 examples per operation and phase (about 1,100 cases, about 30 s a run).
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .test_embedded_server import Server

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
EXCLUDED = "positive_data_acceptance,use_after_free"
EXAMPLES = 12
TOOL_ERROR = re.compile(r"lambda_sources|AST_LAMBDAS_CACHE|AST constructor recursion")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("schemathesis") / "data")
    server.start()
    yield server
    server.kill()


def run_schemathesis(server: Server, token: str, report: Path) -> tuple[int, str]:
    result = subprocess.run(
        [SCHEMATHESIS, "run", f"{server.url}/openapi.json", "--checks", "all", "--exclude-checks", EXCLUDED,
         "-H", f"Authorization: Bearer {token}", "--max-examples", str(EXAMPLES), "--generation-deterministic",
         "--workers", "1", "--no-color", "--report", "junit", "--report-junit-path", str(report)],
        capture_output=True, text=True, timeout=600, check=False)
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated is not None, result.stdout[-3000:] + result.stderr[-3000:]
    return int(generated.group(1)), result.stdout


def failures(report: Path) -> tuple[list[str], list[str]]:
    """The failed checks, and the errors of schemathesis itself, from its JUnit report."""
    failed, errors = [], []
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 (the report schemathesis just wrote)
        for failure in case.findall("failure"):
            failed.append(f"{case.get('name')}: {(failure.get('message') or failure.text or '')[:2000]}")
        for error in case.findall("error"):
            errors.append(f"{case.get('name')}: {(error.get('message') or error.text or '')[:300]}")
    return failed, errors


@pytest.mark.e2e
@pytest.mark.timeout(900)
@pytest.mark.parametrize("roles", [[], ["auditor"]], ids=["user", "auditor"])
def test_schemathesis_finds_no_server_error_undocumented_status_or_accepted_invalid_input(
        served: Server, tmp_path: Path, roles: list[str]) -> None:
    token = served.todo("token", "--sub", f"fuzz-{'-'.join(roles) or 'user'}", "--ttl", "1h",
                        *(["--roles", ",".join(roles)] if roles else []))
    report = tmp_path / "junit.xml"
    cases, output = run_schemathesis(served, token, report)
    print(f"schemathesis ({'/'.join(roles) or 'user'}): {cases} cases")  # the count the issue asks to record
    failed, errors = failures(report)
    assert failed == [], "\n".join(failed)
    # hypothesis, describing a lambda of schemathesis' coverage phase, sometimes fails in its own AST cache
    # (a KeyError, or "AST constructor recursion depth mismatch"): an error of the tool, not a finding.
    # Any other error is one.
    assert [e for e in errors if not TOOL_ERROR.search(e)] == [], "\n".join(errors)
    assert cases >= 500, output[-2000:]
    assert httpx.get(f"{served.url}/healthz").status_code == 200  # and the server still answers
