"""scripts/audit_deps.py: OSV range matching on a small advisory folder (offline)."""

import json

from conftest import load_script
from packaging.version import Version

audit = load_script("audit_deps")

RECORD = """id: PYSEC-0000-1
affected:
- package: {name: Demo-Pkg, ecosystem: PyPI}
  ranges:
  - type: ECOSYSTEM
    events: [{introduced: "0"}, {fixed: "1.2.0"}, {introduced: "2.0"}, {last_affected: "2.1"}]
  versions: ["3.0.0"]
"""


def test_osv_ranges_and_versions():
    entry = __import__("yaml").safe_load(RECORD)["affected"][0]
    hit = {v: audit.affects(entry, Version(v)) for v in ["0.1", "1.1.9", "1.2.0", "1.9", "2.0", "2.1",
                                                         "2.1.1", "3.0.0", "3.0.1"]}
    assert hit == {"0.1": True, "1.1.9": True, "1.2.0": False, "1.9": False, "2.0": True, "2.1": True,
                   "2.1.1": False, "3.0.0": True, "3.0.1": False}


def test_audit_reports_affected_pins_and_fails(tmp_path, capsys):
    (tmp_path / "vulns" / "demo-pkg").mkdir(parents=True)
    (tmp_path / "vulns" / "demo-pkg" / "PYSEC-0000-1.yaml").write_text(RECORD)
    lock = tmp_path / "requirements.lock"
    lock.write_text("Demo_Pkg==1.1\nother==1.0\n")
    assert audit.main(["--lock", str(lock), "--advisories", str(tmp_path / "vulns")]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [v["id"] for v in out["vulnerable"]] == ["PYSEC-0000-1"] and out["pins"] == 2
    lock.write_text("demo-pkg==1.2.0\n")
    assert audit.main(["--lock", str(lock), "--advisories", str(tmp_path / "vulns")]) == 0
