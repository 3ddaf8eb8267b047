"""The Prometheus alerting rules (knative/alerts.yaml): promtool accepts them, each one fires on its
synthetic series and stays quiet where it must (tests/deploy/alerts/todo-alerts.test.yaml), and a
rule that drifts from what the cases assert is caught.

promtool is Prometheus's own rule checker, built from the Go module proxy by
scripts/stack/install-promtool.sh (a no-op when cached)."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from todo import metrics
from todo_dev.stack import CACHE, SCRIPTS

from .checks import ROOT, Manifests

RULES_KEY = "todo-alerts.yaml"
CASES = Path(__file__).parent / "alerts" / "todo-alerts.test.yaml"
ALERTS = {"TodoOutboxStalled", "TodoDeadLetter", "TodoRemindersLate", "TodoEventRetries", "TodoHttp5xx"}


@pytest.fixture(scope="session")
def promtool() -> Path:
    subprocess.run([str(SCRIPTS / "install-promtool.sh")], check=True)
    return CACHE / "bin" / "promtool"


def rules_of(manifests: Manifests) -> dict[str, Any]:
    config_map = manifests.get("ConfigMap", "todo-alerts")
    rules: dict[str, Any] = yaml.safe_load(config_map["data"][RULES_KEY])
    return rules


def alert_rules(rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in rules["groups"] for r in group["rules"] if "alert" in r}


def run(promtool: Path, folder: Path, rules: dict[str, Any], *command: str) -> subprocess.CompletedProcess[str]:
    """promtool on ``rules`` written as todo-alerts.yaml beside a copy of the test cases."""
    (folder / RULES_KEY).write_text(yaml.safe_dump(rules, sort_keys=False))
    (folder / CASES.name).write_text(CASES.read_text())
    return subprocess.run([str(promtool), *command], cwd=folder, capture_output=True, text=True, timeout=120)


def test_the_rules_file_passes_promtool_check(promtool: Path, manifests: Manifests, tmp_path: Path) -> None:
    result = run(promtool, tmp_path, rules_of(manifests), "check", "rules", RULES_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_check_rejects_a_broken_expression(promtool: Path, manifests: Manifests, tmp_path: Path) -> None:
    rules = rules_of(manifests)
    alert_rules(rules)["TodoHttp5xx"]["expr"] = "sum by (function) (rate(todo_http_requests_total[5m]) > "
    result = run(promtool, tmp_path, rules, "check", "rules", RULES_KEY)
    assert result.returncode != 0
    assert "TodoHttp5xx" in result.stdout + result.stderr


def test_every_alert_passes_its_promtool_unit_tests(promtool: Path, manifests: Manifests, tmp_path: Path) -> None:
    result = run(promtool, tmp_path, rules_of(manifests), "test", "rules", CASES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_must_not(manifests: Manifests) -> None:
    assert set(alert_rules(rules_of(manifests))) == ALERTS
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(CASES.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fires == ALERTS
    assert quiet == ALERTS


def test_every_alert_links_its_section_of_the_operations_guide(manifests: Manifests) -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", guide, re.M)}
    for name, rule in alert_rules(rules_of(manifests)).items():
        link = rule["annotations"]["runbook_url"]
        assert link == f"docs/operations.md#{name.lower()}"
        assert name.lower() in anchors, f"docs/operations.md has no section {name}"


# A rule changed in a way that its cases must notice: (alert, field, text in it, replacement).
DRIFTS = [
    ("TodoOutboxStalled", "expr", "> 60", "> 50"),  # the 59 s case would fire
    ("TodoOutboxStalled", "expr", "> 60", "> 600"),  # the stuck outbox would not
    ("TodoOutboxStalled", "for", "1m", "0m"),  # fires before it has been stuck for a minute
    ("TodoDeadLetter", "expr", 'outcome="poison"', 'outcome=~"poison|retry"'),  # retries are no dead letter
    ("TodoRemindersLate", "expr", "> 5", "> 4"),  # p99 4.96 s would fire
    ("TodoRemindersLate", "expr", "0.99", "0.5"),  # the median is on time: the late tail would not fire
    ("TodoEventRetries", "expr", "> 0.1", "> 0.04"),  # on-task-event's 5 % would fire
    ("TodoEventRetries", "for", "10m", "2m"),  # the three-minute burst would fire
    ("TodoHttp5xx", "expr", 'status=~"5.."', 'status=~"[45].."'),  # 4xx are the client's, not ours
    ("TodoHttp5xx", "expr", "> 0.05", "> 0.01"),  # query-tasks' 2 % would fire
]


@pytest.mark.parametrize(("alert", "field", "old", "new"), DRIFTS,
                         ids=[f"{a}-{f}-{o}->{n}" for a, f, o, n in DRIFTS])
def test_the_unit_tests_catch_a_drifted_rule(promtool: Path, manifests: Manifests, tmp_path: Path,
                                              alert: str, field: str, old: str, new: str) -> None:
    rules = copy.deepcopy(rules_of(manifests))
    rule = alert_rules(rules)[alert]
    assert old in rule[field]
    rule[field] = rule[field].replace(old, new)
    result = run(promtool, tmp_path, rules, "test", "rules", CASES.name)
    assert result.returncode != 0, f"promtool test rules passed with {alert}.{field}: {old!r} → {new!r}"
    assert f"alertname: {alert}" in result.stdout + result.stderr


def test_a_dead_letter_rule_on_increase_alone_misses_a_new_series(promtool: Path, manifests: Manifests,
                                                                  tmp_path: Path) -> None:
    rules = copy.deepcopy(rules_of(manifests))
    alert_rules(rules)["TodoDeadLetter"]["expr"] = (
        'sum by (function, topic) (increase(todo_events_total{outcome="poison"}[5m])) > 0')
    result = run(promtool, tmp_path, rules, "test", "rules", "--run", "born with its first", CASES.name)
    assert result.returncode != 0
    assert "alertname: TodoDeadLetter" in result.stdout + result.stderr


def test_every_metric_an_alert_reads_is_one_the_functions_export(manifests: Manifests) -> None:
    used = {name for rule in alert_rules(rules_of(manifests)).values()
            for name in re.findall(r"\btodo_[a-z_]+\b", rule["expr"])}
    assert used, "the rules read no metric of ours"
    assert used <= metrics.exported_names(), used - metrics.exported_names()


def test_the_lateness_alert_threshold_is_a_bucket_bound_of_its_histogram() -> None:
    # p99 > 5 s is then read off a bucket edge, not interpolated inside a wider bucket.
    assert 5.0 in metrics.REMINDER_LATENESS.buckets
