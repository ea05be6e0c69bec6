"""The Prometheus alerting rules that ship (deploy/prometheus/alerts.yml): valid for promtool,
their unit tests (alerts_test.yml) pass, Prometheus loads them, and they only use metrics
docsync emits. promtool comes with Debian's `prometheus` package (`make test` installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from docsync import metrics

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = REPO / "deploy" / "prometheus"
# promtool is an APT_TEST package (Makefile), like smbd: not part of `make test-fast`.
pytestmark = pytest.mark.services


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is required: `apt-get install prometheus` (make test installs it, server stopped)")
    return subprocess.run([tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


def test_rules_pass_promtool_check():
    proc = promtool("check", "rules", "alerts.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 12 rules found" in proc.stdout


def test_rules_pass_their_unit_tests():
    proc = promtool("test", "rules", "alerts_test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_is_unit_tested_firing_and_quiet():
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert alerts >= {"DocsyncFreshnessSLOBreached", "DocsyncBacklogOld", "DocsyncRevocationLagHigh",
                      "DocsyncRevocationPending", "DocsyncQuarantineGrowing", "DocsyncRunsFailing",
                      "DocsyncDirectorySnapshotStale", "DocsyncRetrievalUnsafe", "DocsyncRetrievalQualityDropped",
                      "DocsyncCanaryMisses"}
    cases = [c for t in yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"] for c in t["alert_rule_test"]]
    for alert in alerts:
        outcomes = {bool(c["exp_alerts"]) for c in cases if c["alertname"] == alert}
        assert outcomes == {True, False}, f"{alert}: test it both firing and not firing"
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("page", "ticket") and rule["annotations"]["description"], rule["alert"]


def test_alerts_use_only_metrics_docsync_emits():
    used = {metrics.family(m) for m in re.findall(r"\bdocsync_[a-z0-9_]+\b", (PROMETHEUS / "alerts.yml").read_text())}
    used -= {"docsync_quarantine"}  # `docsync quarantine list` in a description: the CLI, not a metric
    assert used and used <= set(metrics.CATALOGUE), used - set(metrics.CATALOGUE)


def test_prometheus_loads_the_rules():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    proc = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    # mounted next to prometheus.yml, where its relative rule_files path points
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose["services"]["prometheus"]["volumes"]


def test_exposition_parses_for_promtool():
    """The text format docsync renders (histograms included) parses; what promtool still lints
    is only the naming of older gauges (`_s` units, `_total` gauges), kept for compatibility."""
    flat = {"indexed": 3.0, "pii_person": 1.0, "stage_plan_s": 0.5, "backlog_documents": 2.0}
    flat |= metrics.flatten({"propagation_lag_seconds": metrics.histogram([30.0, 4000.0]),
                             "revocation_lag_seconds": metrics.histogram([])})
    text = metrics.render(metrics.samples_for("share", flat) + metrics.samples_for("other", flat))
    tool = shutil.which("promtool") or pytest.fail("promtool is required (see promtool())")
    proc = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert all("abbreviated units" in line or "_total" in line for line in problems), problems
    assert 'docsync_propagation_lag_seconds_bucket{le="3600",source="share"} 1.0' in text
    assert 'docsync_propagation_lag_seconds_bucket{le="+Inf",source="share"} 2.0' in text
