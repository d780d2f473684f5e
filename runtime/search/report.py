"""What a finished search says: a text report and a PNG of the fitted surface.

The plot shows 1-D slices of f_hat through beta_hat, one per param, with every
trial projected onto the slice (matplotlib's Agg canvas; no pyplot global state).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from runtime.search.loop import SearchResult
from runtime.search.study import TrialRecord


def _num(v: float | None, width: int = 10) -> str:
    """A param value: fixed point, since params live on [lo, hi] ranges like [0, 1]."""
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.4f}"


def _obj(v: float | None, width: int = 10) -> str:
    """An objective value: significant digits, since losses of 0.0023 vs 0.0026 must differ."""
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.4g}"


def _trials_table(result: SearchResult) -> list[str]:
    names = result.space.names
    head = (f"{'trial':>5}  {'kind':<9} {'status':<6} "
            + " ".join(f"{n[:10]:>10}" for n in names)
            + f" {'objective':>10} {'predicted':>10} {'deg':>3} {'seed':>4} {'seconds':>8}")
    lines = [head]
    for r in result.records:
        lines.append(
            f"{r.trial:>5}  {r.kind:<9} {r.status:<6} "
            + " ".join(_num(r.point.get(n)) for n in names)
            + f" {_obj(r.objective)} {_obj(r.predicted)} "
            + f"{'-' if r.degree is None else r.degree:>3} {r.seed:>4} {r.seconds:>8.1f}"
            + (f"  {r.error}" if r.error else ""))
    return lines


def _point(r: TrialRecord) -> str:
    return "(" + ", ".join(f"{k}={v:.4f}" for k, v in r.point.items()) + ")"


def _counts(result: SearchResult) -> str:
    kinds = [r.kind for r in result.records]
    parts = [f"{kinds.count('initial')} initial"]
    for kind, one, many in (("replicate", "noise replicate", "noise replicates"),
                            ("proposal", "proposal", "proposals"),
                            ("explore", "exploration", "explorations")):
        n = kinds.count(kind)
        if n or kind == "proposal":
            parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts)


def noise_lines(result: SearchResult) -> list[str]:
    """The noise estimate and the threshold the stop rule used (with a warning when an
    absolute phi lies below the measured noise)."""
    out = []
    if result.noise is not None:
        out.append(result.noise.text())
    if result.phi is not None:
        out.append(f"phi (stop when |f_hat_min - f_min| < phi): {result.phi_text}")
        if result.noise is not None and result.phi < result.noise.sd and \
                "noise sd" not in result.phi_text:
            out.append(f"  note: phi is below the noise sd {result.noise.sd:.4g}: a gap that "
                       "small is met by luck; consider phi: {noise: 1} or more")
    return out


def format_report(result: SearchResult) -> str:
    """A plain-text summary: trials, fitted coefficients, beta_hat, predicted vs measured."""
    space = result.space
    lines = [f"search over {', '.join(space.names)}: {len(result.records)} trials "
             f"({_counts(result)})"]
    lines += [f"constraint: {c.text}" for c in space.constraints]
    lines.append(f"stopped: {result.reason}")
    lines += noise_lines(result)
    lines += ["", *_trials_table(result), ""]
    fit = result.surrogate
    if fit is not None:
        form = "log f (f_hat = exp(poly))" if fit.transform == "log" else "f"
        loo = "n/a" if fit.loo_rmse is None else f"{fit.loo_rmse:.4g}"
        lines.append(f"surrogate: degree {fit.degree} ({fit.form}) fitted to {form}, "
                     f"{fit.method} on {fit.n_points} points, R^2 = {fit.r2:.4f}, "
                     f"RMSE = {fit.rmse:.4g}, leave-one-out RMSE = {loo}")
        if len(fit.compared) > 1:
            lines.append("  forms compared (R^2 and errors in f's units; the first is used):")
            lines += [f"    {q.text()}" for q in fit.compared]
        lines += [f"  note: {n}" for n in fit.notes]
        lines.append(f"  {fit.equation()}")
        width = max(len(name) for name, _ in fit.coefficients())
        lines += [f"  {name:<{width}}  {c: .6g}" for name, c in fit.coefficients()]
        lines.append("")
    prop = result.proposal
    if prop is not None:
        lines.append(f"beta_hat (trial {prop.trial}) = {_point(prop)}")
        gap = (None if prop.objective is None or prop.predicted is None
               else abs(prop.objective - prop.predicted))
        lines.append(f"predicted f_hat_min = {_obj(prop.predicted, 0)}, measured f_min = "
                     f"{_obj(prop.objective, 0)}, gap = {_obj(gap, 0)}")
    best = result.best
    if best is not None:
        lines.append(f"best measured: trial {best.trial} ({best.kind}), objective "
                     f"{best.objective:.4g} at {_point(best)}")
    if result.events:
        lines += ["", "events:", *(f"  {e}" for e in result.events)]
    return "\n".join(lines) + "\n"


def plot_slices(result: SearchResult, path: str | os.PathLike[str]) -> Path | None:
    """Write a PNG of f_hat along each param through beta_hat; None when nothing was fitted.

    Solid where the slice is feasible, dotted where it breaks a constraint; trial
    points are drawn at their own value of that param and their measured objective.
    """
    fit, prop, space = result.surrogate, result.proposal, result.space
    if fit is None:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    anchor = prop or result.best
    if anchor is None:
        return None
    center = space.from_point(anchor.point)
    fig = Figure(figsize=(4.0 * space.dim, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, space.dim, squeeze=False)[0]
    ok = [r for r in result.records if r.ok]
    for i, (ax, name) in enumerate(zip(axes, space.names, strict=True)):
        grid = np.linspace(space.lower[i], space.upper[i], 201)
        xs = np.repeat(center[None, :], len(grid), axis=0)
        xs[:, i] = grid
        yhat = fit.predict(xs)
        feasible = space.contains_rows(xs)
        ax.plot(grid, np.where(feasible, yhat, np.nan), "-", color="C0", label="f_hat")
        ax.plot(grid, np.where(feasible, np.nan, yhat), ":", color="C0", alpha=0.6)
        for kind, marker, color in (("initial", "o", "0.45"), ("replicate", "x", "0.45"),
                                    ("proposal", "^", "C1"), ("explore", "s", "C2")):
            pts = [r for r in ok if r.kind == kind]
            if pts:
                ax.scatter([r.point[name] for r in pts], [r.objective for r in pts],
                           marker=marker, color=color, s=18, label=kind, zorder=3)
        if prop is not None and prop.predicted is not None:
            ax.scatter([center[i]], [prop.predicted], marker="*", s=120, color="C3",
                       label="beta_hat (predicted)", zorder=4)
        ax.set_xlabel(name)
        ax.set_title(f"slice through beta_hat along {name}", fontsize=9)
    axes[0].set_ylabel("objective")
    axes[0].legend(fontsize=7)
    out = Path(path)
    fig.savefig(out, dpi=100)
    return out


def write_report(result: SearchResult, directory: str | os.PathLike[str]
                 ) -> tuple[Path, Path | None]:
    """DIR/report.txt and DIR/surrogate.png."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = directory / "report.txt"
    text.write_text(format_report(result))
    return text, plot_slices(result, directory / "surrogate.png")
