"""The measured figures of one run as bars: throughput and p50 per number of clients, memory, time to ready."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .measure import CEILING
from .table import PATHS, Comparison

COLORS = {"triton": "tab:green", "kserve": "tab:blue", "fastapi": "tab:orange"}


def bar_chart(comparison: Comparison) -> Figure:
    """Four panels; the gateway's ceiling is drawn as a mark over (b)'s throughput bars where it was measured."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    clients = comparison.clients
    width = 0.8 / len(PATHS)
    for ax, column, title in ((axes[0], "req_per_s", "throughput (req/s, log)"),
                              (axes[1], "p50_ms", "p50 latency (ms, log)")):
        for index, path in enumerate(PATHS):
            xs = [position + (index - 1) * width for position in range(len(clients))]
            ax.bar(xs, [comparison.point(path, count, column) for count in clients], width, color=COLORS[path],
                   label=PATHS[path])
            if path == "kserve" and (comparison.points["path"] == CEILING).any():
                ax.scatter(xs, [comparison.point(CEILING, count, column) for count in clients], marker="_", s=400,
                           color="black", label=f"{CEILING} (beside b)", zorder=3)
        ax.set(xticks=range(len(clients)), xticklabels=[f"{count} client{'s' * (count > 1)}" for count in clients],
               yscale="log", title=title)
    for ax, values, title in ((axes[2], {p: (comparison.rss_bytes.get(p) or 0) / 2**20 for p in PATHS},
                               "resident memory (MB)"),
                              (axes[3], {p: comparison.ready_s.get(p, 0) for p in PATHS}, "time to first ready (s)")):
        ax.bar(range(len(PATHS)), list(values.values()), color=[COLORS[p] for p in PATHS])
        ax.set(xticks=range(len(PATHS)), xticklabels=["(a)", "(b)", "(c)"], title=title)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
