"""The ``.hsr`` xarray accessor: ``cube.hsr.superresolve(scale=4)``."""

from __future__ import annotations

import xarray as xr


@xr.register_dataarray_accessor("hsr")
class HsrAccessor:
    """geohsr operations on a ``(band, y, x)`` DataArray."""

    def __init__(self, da: xr.DataArray):
        self._da = da

    def superresolve(self, method: str | None = None, scale: int = 4, **kwargs) -> xr.DataArray:
        from .api import superresolve

        return superresolve(self._da, method=method, scale=scale, **kwargs)

    def save(self, path, **kwargs):
        from .io import save_cube

        return save_cube(self._da, path, **kwargs)

    @property
    def wavelength(self):
        """Band centre wavelengths in nm (NaN where unknown)."""
        return self._da.coords["wavelength"].values
