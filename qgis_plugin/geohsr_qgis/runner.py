"""Find and run the geohsr CLI of a separate Python environment (no QGIS imports here).

QGIS ships its own numpy/GDAL/PROJ; importing geohsr's stack inside QGIS fails or crashes, so
the plugin runs ``geohsr`` as a child process with an argument list (never a shell), streams
its JSON progress lines, and kills it on cancel.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time

# variables of QGIS's own environment that would break the child's Python/GDAL/PROJ
STRIP_ENV = ("PYTHONPATH", "PYTHONHOME", "GDAL_DATA", "PROJ_LIB", "PROJ_DATA", "GDAL_DRIVER_PATH",
             "PYTHONSTARTUP", "QGIS_PREFIX_PATH")

SETUP_HELP = (
    "geohsr command line not found. Install geohsr in its own Python environment "
    "(git clone …; make demo), then tell QGIS where it is: Processing > Options > Providers > "
    "geohsr > 'geohsr executable', or set GEOHSR_CLI=/path/to/.venv/bin/geohsr "
    "(or GEOHSR_PYTHON=/path/to/.venv/bin/python) before starting QGIS."
)


def product_file(source: str) -> str | None:
    """The product file behind a QGIS layer that shows one part of a sensor product geohsr reads
    whole: a PRISMA ``PRS_….he5`` opened through GDAL's HDF5 subdataset syntax
    (``HDF5:"/path/PRS_L2D_….he5"://HDFEOS/SWATHS/…``); None for any other source."""
    if not source.upper().startswith("HDF5:"):
        return None
    rest = source[5:]
    if rest.startswith('"'):
        path = rest[1:].split('"', 1)[0]
    else:
        path = rest.split("://", 1)[0]
    name = os.path.basename(path)
    return path if name.upper().startswith("PRS_") and name.lower().endswith(".he5") else None


class CliNotFound(RuntimeError):
    pass


class CliFailed(RuntimeError):
    pass


class Cancelled(RuntimeError):
    pass


def find_cli(setting: str | None = None) -> list[str]:
    """The command prefix that runs geohsr: plugin setting, GEOHSR_PYTHON, GEOHSR_CLI, PATH."""
    if setting:
        if os.path.basename(setting).startswith("python"):
            return [setting, "-m", "geohsr"]
        if os.access(setting, os.X_OK):
            return [setting]
        raise CliNotFound(f"the configured geohsr executable {setting!r} does not exist or is not executable. {SETUP_HELP}")
    py = os.environ.get("GEOHSR_PYTHON")
    if py:
        if not os.access(py, os.X_OK):
            raise CliNotFound(f"GEOHSR_PYTHON={py!r} is not an executable Python. {SETUP_HELP}")
        return [py, "-m", "geohsr"]
    cli = os.environ.get("GEOHSR_CLI")
    if cli:
        if not os.access(cli, os.X_OK):
            raise CliNotFound(f"GEOHSR_CLI={cli!r} is not executable. {SETUP_HELP}")
        return [cli]
    found = shutil.which("geohsr")
    if found:
        return [found]
    raise CliNotFound(SETUP_HELP)


def child_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in STRIP_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def methods(prefix: list[str], timeout: float = 60.0) -> list[dict]:
    """``geohsr methods --json`` of the configured environment."""
    out = subprocess.run(prefix + ["methods", "--json"], capture_output=True, text=True,
                         env=child_env(), timeout=timeout, check=False)
    if out.returncode != 0:
        raise CliFailed(_last_error(out.stderr) or "geohsr methods failed")
    return json.loads(out.stdout)


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("Error:"):
            return ln[len("Error:"):].strip()
    return lines[-1] if lines else ""


def run(args: list[str], on_progress=None, on_log=None, is_cancelled=None, poll: float = 0.1) -> str:
    """Run ``args``; returns stdout. Raises CliFailed (with the CLI's one-line error) on a
    non-zero exit and Cancelled when ``is_cancelled()`` turns true (the child is terminated,
    then killed if it does not stop within 10 s)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(), start_new_session=True)
    lines: queue.Queue = queue.Queue()
    err_lines: list[str] = []

    def pump():
        for ln in proc.stderr:
            lines.put(ln.rstrip("\n"))
        lines.put(None)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    finished = False
    while not finished:
        try:
            ln = lines.get(timeout=poll)
        except queue.Empty:
            ln = ""
        if ln is None:
            finished = True
        elif ln:
            if ln.startswith("{"):
                try:
                    msg = json.loads(ln)
                    if "progress" in msg and on_progress:
                        on_progress(100.0 * float(msg["progress"]))
                    continue
                except ValueError:
                    pass
            err_lines.append(ln)
            if on_log:
                on_log(ln)
        if is_cancelled is not None and is_cancelled():
            _stop(proc)
            raise Cancelled("cancelled by the user; no output was written")
    out = proc.stdout.read()
    rc = proc.wait()
    if rc != 0:
        raise CliFailed(_last_error("\n".join(err_lines)) or f"geohsr exited with code {rc}")
    return out


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the child's process group (geohsr removes its temporary files), then SIGKILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            return
        time.sleep(0.05)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
