#!/usr/bin/env python3
"""Draws docs/dashboard.png: the dashboard's panels, laid out as in Grafana, plotted from
the Prometheus query results the dashboard test wrote (a real run, really scraped).

    SLUICE_DASHBOARD_DATA=/tmp/dashboard-data.json \\
        cargo test -p sluice-tests --test it dashboard
    scripts/dashboard/render.py /tmp/dashboard-data.json docs/dashboard.png

Needs matplotlib; run from the repository root, it installs it into .tools/render.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools/render"


def import_matplotlib():
    if not (TOOLS / "matplotlib").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--target", str(TOOLS), "matplotlib"],
            check=True,
        )
    sys.path.insert(0, str(TOOLS))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def legend(template, metric):
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), template) or "value"


SCALES = {"bytes": (1024 * 1024, "MiB"), "s": (0.001, "ms"), "percentunit": (0.01, "%")}


def main():
    data_path, out_path = sys.argv[1], sys.argv[2]
    data = json.loads(Path(data_path).read_text())
    plt = import_matplotlib()
    panels = data["panels"]
    rows = data["rows"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_h = 0.42
    fig = plt.figure(figsize=(24 * 0.75, height * unit_h), facecolor="#111217")
    start = min(
        float(v[0])
        for p in panels
        for t in p["targets"]
        for s in t["result"]
        for v in s["values"]
    )

    def axes_at(grid):
        left = grid["x"] / 24 + 0.006
        width = grid["w"] / 24 - 0.03
        bottom = 1 - (grid["y"] + grid["h"]) / height + 0.018
        h = grid["h"] / height - 0.045
        return fig.add_axes([left + 0.018, bottom, width, h], facecolor="#181b1f")

    for row in rows:
        y = 1 - (row["gridPos"]["y"] + 0.7) / height
        fig.text(0.01, y, row["title"], color="#d8d9da", fontsize=13, weight="bold")
    for panel in panels:
        ax = axes_at(panel["gridPos"])
        ax.set_title(panel["title"], color="#d8d9da", fontsize=10, loc="left")
        for spine in ax.spines.values():
            spine.set_color("#2c3235")
        ax.tick_params(colors="#8e8e8e", labelsize=7)
        ax.grid(color="#2c3235", linewidth=0.5)
        unit_label = ""
        for target in panel["targets"]:
            unit = target.get("unit") or ""
            scale, unit_label = SCALES.get(unit, (1, ""))
            for series in target["result"][:8]:
                points = [(float(t) - start, float(v)) for t, v in series["values"] if v != "NaN"]
                if not points:
                    continue
                xs, ys = zip(*points)
                ax.plot(xs, [y / scale for y in ys], linewidth=1.2,
                        label=legend(target.get("legend") or "", series["metric"]))
        if unit_label:
            ax.set_ylabel(unit_label, color="#8e8e8e", fontsize=7)
        ax.set_xlabel("seconds into the run", color="#8e8e8e", fontsize=7)
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=6, loc="upper left", facecolor="#181b1f", edgecolor="#2c3235",
                      labelcolor="#d8d9da", ncol=2 if len(handles) > 4 else 1)
    fig.text(0.99, 0.003, f"{data['title']} dashboard, from a real run scraped by Prometheus "
             "(tests/it/dashboard.rs)", color="#8e8e8e", fontsize=8, ha="right")
    fig.savefig(out_path, dpi=72, facecolor=fig.get_facecolor())


if __name__ == "__main__":
    main()
