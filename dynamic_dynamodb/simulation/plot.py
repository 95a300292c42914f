"""plot.png: demand, provisioning and throttling over time, the config against the AWS baseline."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .score import Figures
from .world import World

NO_MATPLOTLIB = "no plot.png: matplotlib is not installed (pip install 'dynamic-dynamodb[plot]')"
MAX_POINTS = 1200  # about two points per horizontal pixel of a panel; longer series keep their maxima


def write_plot(path: Path, config: World, config_figures: Figures, baseline: World, baseline_name: str,
               baseline_figures: Figures) -> str | None:
    """Draw the PNG; returns a one-line hint instead when matplotlib is missing."""
    try:
        # imported here: matplotlib is an optional extra and slow to import
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
        from matplotlib.figure import Figure
    except ImportError:
        return NO_MATPLOTLIB
    trace = config.trace
    n = config.minute
    step = max(1, math.ceil(n / MAX_POINTS))

    def peaks(values: Sequence[float], scale: float = 1.0) -> Any:
        # maxima per group of `step` minutes: a short spike stays visible after reduction
        arr = np.asarray(values[:n], dtype=float) * scale
        if step == 1:
            return arr
        return np.pad(arr, (0, -n % step), mode="edge").reshape(-1, step).max(axis=1)

    x = np.datetime64(trace.start.replace(tzinfo=None), "m") + np.arange(0, n, step).astype("timedelta64[m]")
    fig = Figure(figsize=(15, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2, sharex=True, height_ratios=(3, 1))
    sides = (
        ("reads", trace.reads, (config.provisioned_reads, baseline.provisioned_reads),
         (config.throttled_reads, baseline.throttled_reads)),
        ("writes", trace.writes, (config.provisioned_writes, baseline.provisioned_writes),
         (config.throttled_writes, baseline.throttled_writes)),
    )
    styles = ({"color": "tab:blue", "label": "this config"},
              {"color": "tab:orange", "linestyle": "--", "label": baseline_name})
    for col, (dim, demand, provisioned, throttled) in enumerate(sides):
        top, bottom = axes[0][col], axes[1][col]
        # an outline as well as the fill: a short spike is thinner than a pixel
        top.fill_between(x, peaks(demand), step="post", facecolor="0.85", edgecolor="0.45", linewidth=0.6,
                         label="demand")
        for values, style in zip(provisioned, styles, strict=False):
            top.plot(x, peaks(values), drawstyle="steps-post", linewidth=1,
                     **{**style, "label": f"provisioned, {style['label']}"})
        for throttles, style in zip(throttled, styles, strict=False):
            bottom.plot(x, peaks(throttles, 1 / 60.0), drawstyle="steps-post", linewidth=1, **style)
        top.set_title(f"{dim} (units/s)")
        bottom.set_title(f"throttled {dim} (units/s)")
        for ax in (top, bottom):
            ax.set_ylim(bottom=0)
        locator = AutoDateLocator()
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    # one legend below the panels: inside one it hid the start of the lines, the initial capacity
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), fontsize="small")
    reduced = f", maxima per {step} min" if step > 1 else ""
    fig.suptitle(
        f"{trace.name} (UTC{reduced}): this config ${config_figures.cost_usd:.2f}, "
        f"{config_figures.throttled_share:.3%} throttled  |  {baseline_name} ${baseline_figures.cost_usd:.2f}, "
        f"{baseline_figures.throttled_share:.3%} throttled  |  on-demand ${config_figures.on_demand_cost_usd:.2f}")
    fig.savefig(path)
    return None
