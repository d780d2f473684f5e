"""CED curves to a PNG file (matplotlib's Agg canvas, no pyplot global state), for
`netspec eval` reports comparing one or more models."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from runtime.evaluate.metrics import auc, ced_curve


def save_ced_plot(curves: Mapping[str, np.ndarray], path: str | Path, *,
                  max_threshold: float = 0.10, title: str | None = None,
                  normalizer: str = "inter_ocular") -> Path:
    """Plot the CED of each {label: per-image NMEs} up to `max_threshold`; returns path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("save_ced_plot needs at least one curve")
    fig = Figure(figsize=(6.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, nmes in curves.items():
        t, frac = ced_curve(nmes, max_threshold)
        ax.step(t, frac, where="post",
                label=f"{label} (AUC@{max_threshold:g} = {auc(nmes, max_threshold):.3f})")
    ax.set_xlim(0.0, max_threshold)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(f"NME ({normalizer.replace('_', '-')} normalised)")
    ax.set_ylabel("fraction of images")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    out = Path(path)
    fig.savefig(out, format="png")
    return out
