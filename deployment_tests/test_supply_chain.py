"""Supply chain checks that run offline: static security scan, secret scan, and the API image's SBOM."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=check)


def test_bandit_finds_no_high_severity_issue():
    report = _run(str(BIN / "bandit"), "-r", "election_assets", "election_api", "-f", "json", "-q", check=False)
    findings = json.loads(report.stdout)["results"]
    high = [
        f"{f['filename']}:{f['line_number']} {f['test_id']} {f['issue_text']}"
        for f in findings
        if f["issue_severity"] == "HIGH"
    ]
    assert high == []


def test_no_secrets_in_tracked_files():
    tracked = _run("git", "ls-files").stdout.split()
    scan = json.loads(_run(str(BIN / "detect-secrets"), "scan", *tracked).stdout)
    assert scan["results"] == {}


def test_the_pinned_api_requirements_are_the_versions_installed_here():
    # requirements/api.txt pins the API image (Dockerfile) and constrains `make install`: the tests ran on it.
    committed = (ROOT / "requirements" / "api.txt").read_text()
    assert _run(sys.executable, "scripts/api_requirements.py").stdout == committed, (
        "requirements/api.txt is stale: regenerate it with scripts/api_requirements.py"
    )


def test_api_sbom_lists_the_serving_stack_and_nothing_of_the_pipeline(tmp_path):
    requirements = ROOT / "requirements" / "api.txt"
    sbom_path = tmp_path / "sbom.json"
    _run(str(BIN / "cyclonedx-py"), "requirements", str(requirements), "--of", "JSON", "-o", str(sbom_path))
    components = {c["name"].lower(): c["version"] for c in json.loads(sbom_path.read_text())["components"]}
    for needed in ("numpy", "litestar", "msgspec", "prometheus-client", "uvicorn"):
        assert needed in components, needed
    for pipeline_only in ("dagster", "mlflow", "evidently", "pandas", "scikit-learn", "xgboost-cpu"):
        assert pipeline_only not in components, pipeline_only
