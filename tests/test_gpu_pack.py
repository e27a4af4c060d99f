"""scripts/gpu_train_rs.py: the scenes packed for a GPU machine come back as the readers gave them
(to 1/65535), split, wavelengths and CAVE crops included — offline, on synthetic scenes."""

import numpy as np
from conftest import load_script

from geohsr.train import data as D

gpu = load_script("gpu_train_rs")


def test_pack_round_trip(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    # steep spectra: band-to-band differences beyond ±32767 (in 1/65535) must wrap and come back
    steep = np.where(np.arange(40)[:, None, None] % 2 == 0, 0.98, 0.01).astype(np.float32) * np.ones((40, 9, 7),
                                                                                                    np.float32)
    scenes = {"train": [D.Scene("a", rng.random((40, 12, 10), dtype=np.float32)), D.Scene("b", steep)],
              "val": [D.Scene("c", rng.random((30, 8, 8), dtype=np.float32), np.linspace(400, 2500, 30))]}
    cave = [D.Scene("toy_ms", rng.random((31, 20, 24), dtype=np.float32), D.CAVE_WAVELENGTHS.copy())]
    monkeypatch.setattr(D, "rs_scenes", lambda root, split: scenes[split])
    monkeypatch.setattr(D, "cave_scenes", lambda root, split: cave)
    gpu.pack(tmp_path / "data", tmp_path / "pack", cave_side=16)
    train, val, crops, oracle = gpu.unpack(tmp_path / "pack")
    assert [s.name for s in train] == ["a", "b"] and [s.name for s in val] == ["c"] and crops[0].name == "toy_ms"
    assert not oracle
    for got, want in zip(train + val, scenes["train"] + scenes["val"]):
        assert got.cube.dtype == np.float32 and np.abs(got.cube - want.cube).max() <= 0.5 / 65535 + 1e-7
    assert train[0].wavelength is None and np.allclose(val[0].wavelength, scenes["val"][0].wavelength)
    assert crops[0].cube.shape == (31, 16, 16)
    assert np.abs(crops[0].cube - cave[0].cube[:, 2:18, 4:20]).max() <= 0.5 / 65535 + 1e-7
    # --oracle: the test scenes alone, training and validating (never the training or validation ones)
    scenes["test"] = [D.Scene("t", rng.random((20, 8, 8), dtype=np.float32))]
    gpu.pack(tmp_path / "data", tmp_path / "oracle", oracle=True)
    train, val, crops, oracle = gpu.unpack(tmp_path / "oracle")
    assert oracle and [s.name for s in train] == ["t"] and [s.name for s in val] == ["t"] and crops == []


def test_gpu_inference_check_runs_and_compares(tmp_path, monkeypatch):
    """scripts/gpu_check_infer.py (run on a lent GPU) on the CPU: its record of a method holds the
    device-against-CPU and threads-against-one comparisons, and a failing method is recorded, not fatal."""
    import json
    import sys

    chk = load_script("gpu_check_infer")
    monkeypatch.setattr(chk, "CASES", (("snlsr", 4, None), ("no-such-method", 4, 8)))
    monkeypatch.setattr(sys, "argv", ["x", str(tmp_path), "--device", "cpu", "--side", "12", "--batch", "2",
                                      "--reps", "1"])
    chk.main()
    res = json.loads((tmp_path / "infer_check.json").read_text())["results"]
    assert res[0]["method"] == "snlsr" and res[0]["bands"] == 30 and res[0]["max_abs_threads_vs_one"] == 0.0
    assert res[0]["max_abs_vs_cpu_fp32"] == 0.0 and 30 < res[0]["psnr_bf16_vs_fp32"] < 200
    assert res[1]["method"] == "no-such-method" and "unknown method" in res[1]["error"]


def test_gpu_site_links_pyprojs_duplicate_libraries_to_rasterios(tmp_path):
    """scripts/gpu_site.py: pyproj's copies of libraries rasterio also bundles become links to
    rasterio's (libproj stays: rasterio's renames its symbols); rasterio's other libraries get a
    link beside them; tests folders and stubs go."""
    site_mod = load_script("gpu_site")
    site = tmp_path / "site"
    for rel in ("pyproj.libs/libproj-aaaa1111.so.25.9.5.1", "pyproj.libs/libcurl-bbbb2222.so.4.8.0",
                "rasterio.libs/libproj-cccc3333.so.25.9.7.1", "rasterio.libs/libcurl-dddd4444.so.4.8.0",
                "rasterio.libs/libssl-eeee5555.so.3", "dask/tests/test_x.py", "dask/array/core.py",
                "dask/dataframe/core.py", "pyproj/__init__.pyi", "pyproj/proj_dir/share/proj/proj.db"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(rel)
    site_mod.trim(site)
    mine = site / "pyproj.libs"
    curl = mine / "libcurl-bbbb2222.so.4.8.0"
    assert curl.is_symlink() and curl.read_text() == "rasterio.libs/libcurl-dddd4444.so.4.8.0"
    assert not (mine / "libproj-aaaa1111.so.25.9.5.1").is_symlink()
    assert (mine / "libssl-eeee5555.so.3").read_text() == "rasterio.libs/libssl-eeee5555.so.3"
    assert (site / "dask/array/core.py").exists()
    for gone in ("dask/tests", "dask/dataframe", "pyproj/__init__.pyi", "pyproj/proj_dir/share/proj/proj.db"):
        assert not (site / gone).exists(), gone
