"""Audit the pinned dependencies (requirements.lock) against known vulnerabilities.

``pip-audit -r requirements.lock`` is the tool of choice where its databases are reachable. On
machines that reach only package registries it reports every package as "not found" (PyPI's
per-version JSON API, which pip-audit asks, is not served there), so this script does the same
check from data that can be brought in:

* ``--advisories DIR``: a checkout of the PyPA advisory database
  (https://github.com/pypa/advisory-database, the OSV records pip-audit's PyPI service serves);
  every record whose affected ranges or versions contain a pinned version is reported.
* ``--pypi``: PyPI's project JSON (``/pypi/<name>/json``), which lists the vulnerabilities of the
  *latest* release; reported for pins that are the latest release, and every pin older than the
  latest is listed so that the age of the database is visible.

    python scripts/audit_deps.py --lock requirements.lock --advisories advisory-database/vulns [--pypi]

Exit status 1 when a pinned version is affected by a record that has a fix or no fix.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version


def read_lock(path: Path) -> dict[str, Version]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            pins[canonicalize_name(name.split("[")[0])] = Version(ver.split(";")[0].strip())
    return pins


def _v(text):
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def affects(entry: dict, version: Version) -> bool:
    """OSV semantics for the PyPI ecosystem: explicit versions, or ECOSYSTEM ranges of
    introduced / fixed / last_affected events."""
    if any(_v(v) == version for v in entry.get("versions") or []):
        return True
    for rng in entry.get("ranges") or []:
        if rng.get("type") != "ECOSYSTEM":
            continue
        inside = False
        for ev in rng.get("events") or []:
            if "introduced" in ev:
                lo = Version("0") if ev["introduced"] == "0" else _v(ev["introduced"])
                inside = inside or (lo is not None and version >= lo)
            elif "fixed" in ev and _v(ev["fixed"]) is not None and version >= _v(ev["fixed"]):
                inside = False
            elif "last_affected" in ev and _v(ev["last_affected"]) is not None \
                    and version > _v(ev["last_affected"]):
                inside = False
        if inside:
            return True
    return False


def audit_advisories(pins: dict[str, Version], root: Path) -> list[dict]:
    found = []
    for name, version in pins.items():
        folder = root / name
        if not folder.is_dir():
            continue
        for rec_path in sorted(folder.glob("*.yaml")):
            rec = yaml.safe_load(rec_path.read_text())
            if rec.get("withdrawn"):
                continue
            for entry in rec.get("affected") or []:
                pkg = entry.get("package") or {}
                if canonicalize_name(pkg.get("name", "")) == name and affects(entry, version):
                    found.append({"package": name, "version": str(version), "id": rec.get("id"),
                                  "aliases": rec.get("aliases") or [], "source": "advisory-database"})
    return found


def audit_pypi(pins: dict[str, Version]) -> tuple[list[dict], list[str]]:
    found, older = [], []
    for name, version in pins.items():
        if version.local:  # e.g. torch 2.13.0+cpu: the PyPI record is for 2.13.0
            version = Version(version.public)
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=30) as r:
            data = json.load(r)
        latest = Version(data["info"]["version"])
        if version < latest:
            older.append(f"{name} {version} (latest {latest})")
            continue
        for v in data.get("vulnerabilities") or []:
            if not v.get("withdrawn"):
                found.append({"package": name, "version": str(version), "id": v.get("id"),
                              "aliases": v.get("aliases") or [], "source": "pypi"})
    return found, older


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lock", type=Path, default=Path("requirements.lock"))
    ap.add_argument("--advisories", type=Path, help="the vulns/ folder of the PyPA advisory database")
    ap.add_argument("--pypi", action="store_true", help="also ask PyPI's project JSON")
    a = ap.parse_args(argv)
    if not a.advisories and not a.pypi:
        ap.error("give --advisories DIR and/or --pypi")
    pins = read_lock(a.lock)
    found: list[dict] = []
    if a.advisories:
        found += audit_advisories(pins, a.advisories)
    older: list[str] = []
    if a.pypi:
        f, older = audit_pypi(pins)
        found += f
    print(json.dumps({"pins": len(pins), "vulnerable": found, "older_than_latest": older}, indent=1))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
