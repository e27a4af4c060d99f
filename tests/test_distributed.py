import os

import numpy as np
import pytest

import geohsr


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # the nanny sets OMP_NUM_THREADS=1 (and MKL_, OPENBLAS_, MALLOC_TRIM_) in this process's
    # environment for its workers and leaves it there: every later subprocess of the suite (CLI
    # runs, notebook kernels) would run torch on one thread. Put the environment back.
    environ = dict(os.environ)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()
    os.environ.clear()
    os.environ.update(environ)


def test_superresolve_under_a_distributed_client(client, make_raster, tmp_path):
    path, _ = make_raster(bands=4, h=40, w=44, nodata=-9999.0)
    ref = geohsr.superresolve(geohsr.open_cube(path), scale=2).values
    lazy = geohsr.open_cube(path, chunks={"band": -1, "y": 16, "x": 16})
    hr = geohsr.superresolve(lazy, scale=2)
    out = hr.compute()  # the active client runs it
    np.testing.assert_array_equal(out.values, ref)
    assert out.rio.crs == lazy.rio.crs


def test_streamed_run_on_the_cluster_equals_local(client, make_raster, tmp_path):
    from geohsr.stream import run_file

    path, _ = make_raster(bands=3, h=64, w=80, nodata=-9999.0)
    local = run_file(path, tmp_path / "local.tif", scale=2, block=16, progress="none")
    dist = run_file(path, tmp_path / "dist.tif", scale=2, block=16, progress="none", client=client)
    np.testing.assert_array_equal(geohsr.open_cube(local).values, geohsr.open_cube(dist).values)
    # batches of 3 blocks per task, resolved on the workers: still the same file
    batched = run_file(path, tmp_path / "b.tif", scale=2, block=16, progress="none", client=client, batch=3)
    np.testing.assert_array_equal(geohsr.open_cube(local).values, geohsr.open_cube(batched).values)


def test_a_prisma_product_streams_on_the_cluster(client, tmp_path):
    """A source xarray reads (here a PRISMA L2D file) travels to the workers as the lazy scene."""
    from geohsr.stream import run_file
    from test_products import make_prisma

    path, *_ = make_prisma(tmp_path / "PRS_L2D_STD_x.he5", h=40, w=36)
    local = run_file(path, tmp_path / "local.tif", scale=2, block=16, progress="none")
    dist = run_file(path, tmp_path / "dist.tif", scale=2, block=16, progress="none", client=client)
    ref = geohsr.superresolve(geohsr.open_cube(path), "bicubic", 2).values
    np.testing.assert_array_equal(geohsr.open_cube(dist).values, geohsr.open_cube(local).values)
    np.testing.assert_array_equal(geohsr.open_cube(local).values, ref)


def test_a_worker_dying_does_not_corrupt_the_output(client, tmp_path):
    import signal
    import threading
    import time

    from conftest import smooth_field, write_raster
    from geohsr.stream import run_file

    src = write_raster(tmp_path / "in.tif", (smooth_field(16, 160, 160, 2) * 1000).astype("float32"))
    ref = geohsr.superresolve(geohsr.open_cube(src), scale=4).values
    pids = list(client.run(os.getpid).values())

    def kill_one():
        time.sleep(1.0)
        os.kill(pids[0], signal.SIGKILL)

    t = threading.Thread(target=kill_one)
    t.start()
    out = run_file(src, tmp_path / "out.tif", scale=4, block=16, progress="none", client=client)
    t.join()
    np.testing.assert_array_equal(geohsr.open_cube(out).values, ref)
