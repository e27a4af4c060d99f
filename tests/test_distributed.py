import numpy as np
import pytest

import geohsr


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_superresolve_under_a_distributed_client(client, make_raster, tmp_path):
    path, _ = make_raster(bands=4, h=40, w=44, nodata=-9999.0)
    ref = geohsr.superresolve(geohsr.open_cube(path), scale=2).values
    lazy = geohsr.open_cube(path, chunks={"band": -1, "y": 16, "x": 16})
    hr = geohsr.superresolve(lazy, scale=2)
    out = hr.compute()  # the active client runs it
    np.testing.assert_array_equal(out.values, ref)
    assert out.rio.crs == lazy.rio.crs
