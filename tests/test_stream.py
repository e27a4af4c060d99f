"""Streaming file-to-file runs: equality with the in-memory result, resume, fault injection."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio

import geohsr
from geohsr.stream import partial_paths, run_file, tile_size

from conftest import geohsr_cmd


def _profile_and_tags(path):
    with rasterio.open(path) as ds:
        prof = {k: v for k, v in ds.profile.items()}
        tags = [ds.tags(i) for i in range(1, ds.count + 1)]
        return prof, tags, ds.descriptions, ds.tags()


@pytest.mark.parametrize("fmt,name", [("GTiff", "o.tif"), ("ENVI", "o.img"), ("COG", "c.tif")])
def test_streamed_equals_in_memory(make_raster, tmp_path, fmt, name):
    path, _ = make_raster(bands=4, h=70, w=53, nodata=-9999.0, bbl=[1, 0, 1, 1])
    out = run_file(path, tmp_path / name, scale=3, fmt=fmt, block=16, progress="none")
    ref = geohsr.superresolve(geohsr.open_cube(path), scale=3)
    got = geohsr.open_cube(out)
    np.testing.assert_array_equal(got.values, ref.values)
    assert got.rio.transform() == ref.rio.transform() and got.rio.crs == ref.rio.crs
    np.testing.assert_array_equal(got.good_band.values, [1, 0, 1, 1])
    assert partial_paths(out) == []


def test_streamed_dualsr_equals_in_memory(tmp_path):
    from test_dualsr import _cube, _tiny_weights

    w4, w2 = _tiny_weights(tmp_path, 4, 0), _tiny_weights(tmp_path, 2, 1)
    cube = _cube(h=40, w=36)
    src = geohsr.save_cube(cube, tmp_path / "in.tif")
    ref = geohsr.superresolve(geohsr.open_cube(src), "dualsr", 4, weights=f"{w4},{w2}")
    out = run_file(src, tmp_path / "d.tif", method="dualsr", scale=4, weights=f"{w4},{w2}",
                   block=16, progress="none")
    got = geohsr.open_cube(out).values
    assert np.abs(got - ref.values).max() <= 1e-5 * np.ptp(cube.values)


def test_tile_size_divides_blocks():
    for side in (16, 48, 96, 112, 1024):
        for s in (2, 3, 4, 8):
            t = tile_size(side, s)
            assert t % 16 == 0 and (side * s) % t == 0 and t <= 512


def _big_input(tmp_path):
    from conftest import smooth_field, write_raster

    data = (smooth_field(16, 144, 160, seed=5) * 3000).astype(np.int16)
    return write_raster(tmp_path / "big.tif", data, nodata=-32768,
                        wavelengths=list(np.linspace(400, 2400, 16)))


@pytest.mark.slow
def test_sigkill_then_resume_is_identical(tmp_path):
    src = _big_input(tmp_path)
    ref = tmp_path / "ref.tif"
    base = ["run", src, "--scale", "4", "--block-size", "16", "--workers", "1"]
    subprocess.run(geohsr_cmd(*base, "-q", "-o", ref), check=True, timeout=300)
    env = dict(os.environ, GEOHSR_FLUSH_SECONDS="0.05")
    rng = random.Random(0)
    out = tmp_path / "out.tif"
    killed = resumed_from_partial = 0
    for trial in range(10):
        for p in [out] + partial_paths(out):
            p.unlink(missing_ok=True)
        proc = subprocess.Popen(geohsr_cmd(*base, "--progress", "json", "-o", out), env=env,
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        if trial % 5 == 4:  # sometimes during start-up, before any block
            time.sleep(rng.uniform(0.0, 1.0))
        else:  # else at a random point of the writing, whatever the machine's speed
            at = rng.uniform(0.02, 0.98)
            for line in proc.stderr:
                if line.startswith("{") and json.loads(line)["progress"] >= at:
                    break
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        proc.stderr.close()
        # the destination is absent or complete and valid, never partial
        if out.exists():
            np.testing.assert_array_equal(geohsr.open_cube(out).values, geohsr.open_cube(ref).values)
            continue
        resumed_from_partial += bool(partial_paths(out))
        r = subprocess.run(geohsr_cmd(*base, "-q", "-o", out, "--resume"), env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        a, b = geohsr.open_cube(out), geohsr.open_cube(ref)
        np.testing.assert_array_equal(a.values, b.values)
        pa, pb = _profile_and_tags(out), _profile_and_tags(ref)
        assert pa == pb
        assert partial_paths(out) == []
    assert killed >= 7 and resumed_from_partial >= 5


def test_ctrl_c_keeps_partial_and_resume_finishes(tmp_path):
    src = _big_input(tmp_path)
    out = tmp_path / "o.tif"
    env = dict(os.environ, GEOHSR_FLUSH_SECONDS="0.05")
    proc = subprocess.Popen(geohsr_cmd("run", src, "-s", "4", "--block-size", "16", "-o", out,
                                 "--progress", "json", "--workers", "1"),
                            env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # interrupt once a few blocks are done
        if line.startswith("{") and json.loads(line)["progress"] >= 0.2:
            proc.send_signal(signal.SIGINT)
            break
    err = proc.stderr.read()
    assert proc.wait() == 130 and "--resume" in err
    assert not out.exists() and partial_paths(out)
    r = subprocess.run(geohsr_cmd("run", src, "-s", "4", "--block-size", "16", "-o", out, "--resume", "-q"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ref = geohsr.superresolve(geohsr.open_cube(src), scale=4)
    np.testing.assert_array_equal(geohsr.open_cube(out).values, ref.values)


def test_discard_partial_on_interrupt(tmp_path):
    src = _big_input(tmp_path)
    out = tmp_path / "o.tif"
    proc = subprocess.Popen(geohsr_cmd("run", src, "-s", "4", "--block-size", "16", "-o", out,
                                 "--progress", "json", "--discard-partial", "--workers", "1"),
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("{") and json.loads(line)["progress"] >= 0.1:
            proc.send_signal(signal.SIGTERM)
            break
    proc.stderr.read()
    assert proc.wait() == 130
    assert not out.exists() and partial_paths(out) == []


# the child reports its own high-water mark: ``wait4``'s ru_maxrss would include this (large)
# test process, whose memory a forked child counts until it execs
_PEAK = ("import atexit, sys\n"
         "def _peak():\n"
         "    for ln in open('/proc/self/status'):\n"
         "        if ln.startswith('VmHWM:'):\n"
         "            print('PEAK_KB', ln.split()[1], file=sys.stderr)\n"
         "atexit.register(_peak)\n"
         "from geohsr.cli import main\n"
         "sys.argv[0] = 'geohsr'\n"
         "main()\n")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc for the peak RSS")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_peak_memory_stays_under_the_limit(tmp_path, workers):
    """``--memory-limit`` bounds the whole process (interpreter, torch, GDAL and the blocks in
    flight): a ×4 run whose output is 5× the limit's block budget stays under it."""
    from conftest import smooth_field, write_raster

    data = (smooth_field(32, 480, 480, seed=2) * 3000).astype(np.int16)
    src = write_raster(tmp_path / "m.tif", data, nodata=-32768)
    limit = 800
    r = subprocess.run([sys.executable, "-c", _PEAK, "run", str(src), "-s", "4", "-m", "bicubic",
                        "--memory-limit", str(limit), "--workers", workers, "-q", "-o", str(tmp_path / "o.tif")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    peak_mb = int(r.stderr.split("PEAK_KB")[1].split()[0]) / 1024
    assert 200 < peak_mb < limit, f"peak RSS {peak_mb:.0f} MB over --memory-limit {limit} MB"
    assert geohsr.open_cube(tmp_path / "o.tif").shape == (32, 1920, 1920)


def test_json_progress_counts_up_once_and_names_its_phase(tmp_path):
    """A two-pass run (scan, network, finish) reports one rising 0 → 1 sequence, each line with
    its phase, so a progress bar never jumps back."""
    from geohsr.stream import phase_spans

    spans = phase_spans(True, True)
    assert spans["scan"][0] == 0 and spans["finish"][1] == pytest.approx(1.0)
    assert spans["scan"][1] == spans["network"][0] and spans["network"][1] == spans["finish"][0]
    from conftest import smooth_field, write_raster

    src = write_raster(tmp_path / "s.tif", (smooth_field(8, 48, 64, seed=2) * 3000).astype(np.int16),
                       wavelengths=list(np.linspace(400, 900, 8)))
    r = subprocess.run(geohsr_cmd("run", src, "-s", "2", "-m", "dualsr", "--block-size", "16", "-o", tmp_path / "o.tif",
                            "--progress", "json"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    msgs = [json.loads(ln) for ln in r.stderr.splitlines() if ln.startswith("{")]
    values = [m["progress"] for m in msgs]
    assert values == sorted(values) and values[-1] == 1.0 and len(values) > 3
    assert [m["phase"] for m in msgs][0] == "scan" and {"network", "finish"} <= {m["phase"] for m in msgs}
