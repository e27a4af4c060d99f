"""Run every benchmark and write the results table (Markdown + CSV).

    python benchmarks/run_all.py            # all (the GDAL and memory ones take minutes)
    python benchmarks/run_all.py --quick    # skip the multi-GB scenes; table from what exists
    python benchmarks/run_all.py --table    # only rebuild results/table.md and table.csv

Results live in ``benchmarks/results/*.json[l]`` (one current record per configuration); the table is rebuilt from them into
``benchmarks/results/table.md`` and ``table.csv``.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RES = HERE / "results"


def run(args):
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, cwd=HERE.parent)


def rows():
    out = []
    g = RES / "bicubic_vs_gdal.json"
    if g.exists():
        d = json.loads(g.read_text())
        i = d["input"]
        mpb = i["bands"] * i["size"] ** 2 / 1e6
        for tool in ("geohsr", "gdal"):
            out.append({"benchmark": f"bicubic ×{i['scale']} ({'GDAL warper' if tool == 'gdal' else 'geohsr'})",
                        "method": "bicubic", "scene": f"{i['size']}×{i['size']}×{i['bands']} float32",
                        "device": "cpu", "lr_mpix_bands_per_s": round(mpb / d[tool]["wall_s"], 2),
                        "wall_s": d[tool]["wall_s"], "peak_rss_mb": d[tool]["peak_rss_mb"], "note":
                        f"time ratio geohsr/GDAL {d['ratio_time_geohsr_over_gdal']}" if tool == "geohsr" else "",
                        "machine": f"{d['machine']['cpus']} CPU, {d['machine']['platform']}"})
    for name in ("memory.jsonl", "speed.jsonl"):
        p = RES / name
        if not p.exists():
            continue
        for ln in p.read_text().splitlines():
            d = json.loads(ln)
            m = d.get("machine", {})
            shape = d.get("input") or d.get("lr_shape")
            default = "–" if d["benchmark"] == "device_peak" else "coarsr (paper)"
            row = {"benchmark": d["benchmark"], "method": d.get("method", default),
                   "scene": "×".join(map(str, shape)) if shape else "",
                   "device": d.get("device_name") if d.get("device", "cpu") != "cpu" else "cpu",
                   "lr_mpix_bands_per_s": d.get("lr_mpix_bands_per_s", ""),
                   "wall_s": d.get("wall_s", d.get("tiled_256_s", d.get("two_workers_s", ""))),
                   "peak_rss_mb": d.get("peak_rss_mb", ""), "note": "",
                   "machine": f"{m.get('cpus')} CPU{', ' + m['gpu'] if m.get('gpu') else ''}, {m.get('platform')}"}
            if d["benchmark"] == "memory":
                row["note"] = f"output {d['output_gb']} GB, limit {d['memory_limit_mb']} MB"
            elif d["benchmark"] == "tiled_vs_whole":
                row["note"] = f"overhead {d['overhead_pct']} % (whole {d['whole_s']} s)"
            elif d["benchmark"] == "distributed_speedup":
                row["note"] = f"speed-up 2 vs 1 worker {d['speedup']}× (identical: {d['identical']})"
            elif d["benchmark"] == "device_peak":
                row["note"] = (f"measured GEMM GFLOP/s {d['gemm_gflop_per_s']}, "
                               f"copy {d['copy_gb_per_s']} GB/s")
            elif d["benchmark"] == "coarsr_paper_device":
                row["note"] = (f"batch {d['batch']}: {d['gflop_per_s']} GFLOP/s = "
                               f"{d['fraction_of_fp32_gemm']} × the measured fp32 GEMM")
            elif d["benchmark"] == "bicubic_device":
                row["note"] = (f"{d['gb_per_s_moved']} GB/s moved = {d['fraction_of_copy_bandwidth']} × "
                               f"the device copy bandwidth {d.get('note', '')}").strip()
            elif d["benchmark"] == "dualsr_stream_device":
                row["note"] = f"block {d['block']}, workers {d['workers']}, batch {d['batch']}"
            elif d["benchmark"] == "fusion_speed":
                row["note"] = f"{d['ratio_to_bicubic']}× bicubic's {d['bicubic_wall_s']} s, {d['guide_bands']}-band guide"
            elif d["benchmark"] == "coarsr_paper_speed":
                row["note"] = (f"{d['tflop']} TFLOP, {d['gflop_per_s']} GFLOP/s, "
                               f"{d['speedup_vs_official']}× the official code")
            out.append(row)
    return out


def main():
    quick = "--quick" in sys.argv
    if "--table" not in sys.argv:  # --table: only rebuild the table from the recorded results
        if not quick:
            run(["benchmarks/bench_bicubic_vs_gdal.py"])
            run(["benchmarks/bench_memory.py"])
        run(["benchmarks/bench_speed.py"])
    table = rows()
    if not table:
        return
    keys = list(table[0])
    with open(RES / "table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(table)
    md = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    md += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in table]
    (RES / "table.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
