"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path


def workdir(path: Path | None, prefix: str) -> Path:
    """The given work folder (created), or a new temporary one."""
    work = Path(path or tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    return work


def timed(cmd: list[str]) -> dict:
    """Run ``cmd`` as a child process: wall time and peak RSS (``wait4``). stderr goes to a
    temporary file (a pipe could fill up and block the child); a failure raises SystemExit."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        if rc != 0:
            err.seek(0)
            raise SystemExit(f"{cmd[0]} failed ({rc}): {err.read().decode(errors='replace')[-2000:]}")
    return {"cmd": " ".join(cmd), "wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


KEY_FIELDS = ("benchmark", "method", "input", "lr_shape", "batch", "workers", "block", "device_name",
              "memory_limit_mb", "scale")


def upsert_jsonl(path: Path, rec: dict, keys: tuple = KEY_FIELDS) -> None:
    """Write ``rec`` into the JSON-lines file ``path``, replacing the record of the same
    configuration (the fields ``keys``): the folder keeps one current record per benchmark and
    configuration; the history lives in RESULTS.md's prose."""
    KEY_FIELDS = keys  # noqa: N806
    key = tuple(json.dumps(rec.get(k)) for k in KEY_FIELDS)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text().splitlines() if path.exists() else []
    keep = [ln for ln in old if ln.strip()
            and tuple(json.dumps(json.loads(ln).get(k)) for k in KEY_FIELDS) != key]
    path.write_text("\n".join(keep + [json.dumps(rec)]) + "\n")


def methods_for(s: int) -> list[str]:
    """The methods a real-guide benchmark compares at scale ``s``: auto and every candidate it
    measures (bicubic, the classical fusion methods, the learned guided methods with weights for
    ``s``, DualSR-GLP and DualSR where DualSR has them)."""
    from geohsr.select import candidates

    c = candidates(s)
    return c[:1] + [m for m in c[1:] if m in ("mtf-glp", "gsa")] + ["auto"] + \
        [m for m in c[1:] if m not in ("mtf-glp", "gsa")]
