"""Regenerate docs/before_after.png (the README picture) from the bundled EnMAP scene.

    .venv/bin/python docs/make_figures.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import geohsr  # noqa: E402

HERE = Path(__file__).resolve().parent


def composite(cube, stretch=None, wl=(640.0, 550.0, 460.0)):
    idx = [int(np.nanargmin(np.abs(cube.wavelength.values - w))) for w in wl]
    a = cube.isel(band=idx).values.astype("float64")
    a[a == cube.rio.nodata] = np.nan
    if stretch is None:
        stretch = [np.nanpercentile(b, (2, 98)) for b in a]
    rgb = np.stack([(b - lo) / (hi - lo) for b, (lo, hi) in zip(a, stretch)], -1)
    return np.clip(np.nan_to_num(rgb), 0, 1), stretch


def main():
    cube = geohsr.open_cube(geohsr.demo_scene_path())
    method = geohsr.get_method("dualsr").shipped_weights() and "dualsr" or "bicubic"
    products = [("EnMAP L2A, 30 m", cube, 1),
                ("bicubic ×4, 7.5 m", geohsr.superresolve(cube, "bicubic", 4), 4),
                (f"{'DualSR' if method == 'dualsr' else 'bicubic'} ×4, 7.5 m",
                 geohsr.superresolve(cube, method, 4), 4)]
    y0, x0, n = 16, 36, 28
    _, stretch = composite(cube)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3), constrained_layout=True)
    for ax, (title, c, s) in zip(axes, products):
        sub = c.isel(y=slice(y0 * s, (y0 + n) * s), x=slice(x0 * s, (x0 + n) * s))
        l, b, r, t = sub.rio.bounds()
        ax.imshow(composite(sub, stretch)[0], extent=(l, r, b, t), interpolation="nearest")
        ax.set_title(title)
        ax.set_xlabel("easting (m, EPSG:32633)")
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.plot([l + 40, l + 540], [b + 60] * 2, color="w", lw=3)
        ax.text(l + 290, b + 90, "500 m", color="w", ha="center")
    axes[0].set_ylabel("northing (m)")
    fig.savefig(HERE / "before_after.png", dpi=90)
    print(HERE / "before_after.png")


if __name__ == "__main__":
    main()
