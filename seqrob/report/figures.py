"""The report's figures: matplotlib (no GUI backend), drawn at print size, colour-blind-safe.

Every function takes tidy frames (result rows in seqrob's vocabulary, or scores) and
returns a :class:`matplotlib.figure.Figure` sized in inches for the page it goes on,
so that 7-pt text prints at 7 pt. Orders keep one colour throughout the report
(Okabe & Ito's palette, safe for the common colour-vision deficiencies); heatmaps
use cividis (sequential) and PuOr (diverging), both readable without colour vision
of red-green. Values are rounded here, for reading only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from seqrob.report.document import TEXT_HEIGHT_IN, TEXT_WIDTH_IN

__all__ = [
    "ALL_LANGUAGES",
    "OKABE_ITO",
    "aso_matrix",
    "interval_plot",
    "language_heatmap",
    "order_colors",
    "seed_distributions",
]

# Okabe & Ito (2008), without yellow (too pale on white paper); the baseline is grey.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
BASELINE_COLOR = "#6f6f6f"
ALL_LANGUAGES = "All languages"
_MAX_ROWS = 58  # rows of one interval plot or heatmap page before it is split

_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 7.5,
    "axes.titlesize": 8,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 3,
    "svg.fonttype": "none",
}


def order_colors(orders: Sequence[str], baseline: str | None) -> dict[str, str]:
    """One colour per order, the same in every figure; the baseline is grey."""
    colors, others = {}, [o for o in orders if o != baseline]
    for i, order in enumerate(others):
        colors[order] = OKABE_ITO[i % len(OKABE_ITO)]
    if baseline in orders:
        colors[baseline] = BASELINE_COLOR
    return colors


def _figure(width: float, height: float) -> Figure:
    """A figure outside pyplot: no global state, no GUI backend, nothing to close (savefig
    picks the PDF/SVG canvas itself, and a notebook displays it as it is)."""
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, min(height, TEXT_HEIGHT_IN * 0.93)))


def chunk_groups(sizes: Sequence[tuple[str, int]], limit: int = _MAX_ROWS) -> list[list[str]]:
    """Split an ordered list of (name, rows) into consecutive pages of at most ``limit`` rows."""
    pages: list[list[str]] = [[]]
    used = 0
    for name, rows in sizes:
        if pages[-1] and used + rows > limit:
            pages.append([])
            used = 0
        pages[-1].append(name)
        used += rows
    return [page for page in pages if page]


# --- interval (forest) plots ----------------------------------------------------------------


def interval_plot(
    rows: pd.DataFrame,
    *,
    groups: Sequence[str],
    colors: Mapping[str, str],
    color_of: Callable[[str], str],
    xlabel: str,
    label: Callable[[pd.Series], str],
    significant: Callable[[pd.Series], bool],
    reference: float = 0.0,
    log: bool = False,
    scale: float = 1.0,
    group_note: Mapping[str, str] | None = None,
    legend_title: str = "colour: the comparison's first order",
) -> Figure:
    """A forest plot: one row per estimate with its interval, grouped under bold group names.

    ``rows`` has ``group, term, estimate, ci_low, ci_high`` (unscaled); ``label(row)``
    is the text printed right of the plot; filled markers are ``significant(row)``. A
    legend above the plot says which colour is which (``colors``: name -> colour, the
    names shown being those ``color_of`` gives a row) and what a filled marker means. An
    interval that runs off the scale (unbounded, or beyond 1/64..64 on a log scale) is
    drawn to the edge and ends in an arrowhead.
    """
    layout: list[tuple[str, object]] = []  # ("group", name) or ("row", series)
    for group in groups:
        part = rows[rows["group"] == group]
        if part.empty:
            continue
        layout.append(("group", group))
        layout.extend(("row", row) for _, row in part.iterrows())
    n = len(layout)
    # Margins from the longest labels (bold 7 pt ~ 0.068 in a character, mono 6.6 pt ~ 0.055 in).
    names = [f"{g}{(group_note or {}).get(g, '')}" for g in groups] + list(rows["term"])
    left = 0.12 + 0.068 * max(len(t) for t in names)
    right = 0.18 + 0.056 * max((len(label(r)) for _, r in rows.iterrows()), default=10)
    width = TEXT_WIDTH_IN - left - right - 0.15
    used = set(rows["term"].map(color_of))
    entries = {name: c for name, c in colors.items() if c in used}
    columns = _legend_columns(list(entries) + list(_MARKER_KEY), TEXT_WIDTH_IN - 0.3)
    top = 0.3 + 0.15 * math.ceil((len(entries) + len(_MARKER_KEY)) / columns)  # inches: the legend
    bottom = 0.55  # the x-axis
    height = top + bottom + 0.165 * n
    fig = _figure(TEXT_WIDTH_IN, height)
    low_edge, high_edge = _interval_range(rows, reference=reference, log=log, scale=scale)
    with matplotlib.rc_context(_RC):
        ax = fig.add_axes((left / TEXT_WIDTH_IN, bottom / height, width / TEXT_WIDTH_IN, 1 - (top + bottom) / height))
        ax.set_xlim(low_edge, high_edge)
        y = np.arange(n)[::-1].astype(float)
        ticks, tick_labels, bold = [], [], []
        for (kind, item), yy in zip(layout, y):
            ticks.append(yy)
            if kind == "group":
                tick_labels.append(f"{item}{(group_note or {}).get(item, '')}")
                bold.append(True)
                ax.axhspan(yy - 0.5, yy + 0.5, color="#eef1f5", lw=0, zorder=0)
                continue
            row = item
            est, low, high = (row[c] * scale for c in ("estimate", "ci_low", "ci_high"))
            color = color_of(row["term"])
            filled = significant(row)
            if np.isfinite(est) or np.isfinite(low) or np.isfinite(high):
                _draw_interval(ax, low, high, yy, color, low_edge, high_edge)
            if np.isfinite(est):
                ax.plot(est, yy, marker="D" if filled else "o", ms=4.2 if filled else 4,
                        mfc=color if filled else "white", mec=color, mew=1.1, zorder=3)  # fmt: skip
            tick_labels.append(row["term"])
            bold.append(False)
            ax.text(1.0 + 0.12 / width, yy, label(row), transform=ax.get_yaxis_transform(), va="center", ha="left",
                    fontsize=6.6, family="DejaVu Sans Mono", color="#111111" if filled else "#555555")  # fmt: skip
        ax.set_yticks(ticks, tick_labels)
        for tick, is_bold in zip(ax.get_yticklabels(), bold):
            tick.set_fontweight("bold" if is_bold else "normal")
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-0.6, n - 0.4)
        ax.axvline(reference * (1 if log else scale), color="#333333", lw=0.7, ls="--", zorder=1)
        if log:
            from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

            ax.set_xscale("log")
            ax.set_xlim(low_edge, high_edge)
            ticks = [t for t in (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if low_edge <= t <= high_edge]
            if len(ticks) > 7:  # thin a wide range so the labels do not crowd
                ticks = [t for t in ticks if t in (0.02, 0.1, 0.5, 1, 2, 10, 50)]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(axis="x", color="#dddddd", lw=0.5, zorder=0)
        ax.set_xlabel(xlabel)
        ax.spines["left"].set_visible(False)
        _legend(fig, ax, entries, legend_title, columns)
    return fig


def _interval_range(rows: pd.DataFrame, *, reference: float, log: bool, scale: float) -> tuple[float, float]:
    """The x-axis range of a forest plot: every finite value with a margin; ratios at most 1/64 to 64."""
    values = rows[["estimate", "ci_low", "ci_high"]].to_numpy(dtype=float).ravel() * scale
    if log:
        finite = [v for v in values if np.isfinite(v) and v > 0] + [reference]
        return max(min(finite) / 1.25, 1 / 64), min(max(finite) * 1.25, 64)
    finite = [v for v in values if np.isfinite(v)] + [reference * scale]
    span = max(finite) - min(finite) or 1.0
    return min(finite) - 0.06 * span, max(finite) + 0.06 * span


def _draw_interval(ax, low: float, high: float, y: float, color: str, low_edge: float, high_edge: float) -> None:
    """One interval's line, cut at the axis range with an arrowhead where it runs off (or is unbounded)."""
    off_low = not (np.isfinite(low) and low >= low_edge)
    off_high = not (np.isfinite(high) and high <= high_edge)
    start = low_edge if off_low else low
    end = high_edge if off_high else high
    ax.plot([start, end], [y, y], color=color, lw=1.3, solid_capstyle="butt", zorder=2)
    for off, edge, marker in ((off_low, low_edge, "<"), (off_high, high_edge, ">")):
        if off:
            ax.plot(edge, y, marker=marker, ms=3.6, color=color, mew=0, zorder=2, clip_on=False)


_MARKER_KEY = {"filled: significant after correction": "D", "open: not significant": "o"}


def _legend_columns(labels: Sequence[str], width_in: float) -> int:
    """The most legend columns that fit in ``width_in``: entries fill the columns one after
    another, each column as wide as its longest entry (7 pt ~ 0.055 in a character, plus
    the handle and the gap)."""
    widths = [0.45 + 0.055 * len(text) for text in labels]
    for columns in range(len(labels), 1, -1):
        rows = math.ceil(len(labels) / columns)
        if sum(max(widths[i:i + rows]) for i in range(0, len(labels), rows)) <= width_in:
            return columns
    return 1


def _legend(fig: Figure, ax, colors: Mapping[str, str], title: str, columns: int) -> None:
    """Above the axes, from the figure's left edge: which colour is which, and what filled and
    open markers mean."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=1.3, marker="o", ms=4, mfc="white", mew=1.1, label=name)
               for name, c in colors.items()]  # fmt: skip
    handles += [Line2D([], [], color="#555555", lw=0, marker=marker, ms=4, mfc="#555555" if marker == "D" else "white",
                       mew=1.1, label=text) for text, marker in _MARKER_KEY.items()]  # fmt: skip
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.1 / TEXT_WIDTH_IN, ax.get_position().y1 + 0.01), ncols=columns,
               frameon=False, title=title, title_fontsize=7, alignment="left", handlelength=1.8, columnspacing=1.2,
               borderaxespad=0, borderpad=0.2, labelspacing=0.3)  # fmt: skip


# --- per-language heatmap -----------------------------------------------------------------


def _text_color(rgba) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def language_heatmap(
    means: pd.DataFrame,
    *,
    orders: Sequence[str],
    reference: str | None,
    families: Sequence[str],
    language_label: Mapping[str, str],
    family_of: Mapping[str, str],
    scale: float,
    unit: str,
) -> Figure:
    """Mean score per language (rows, grouped by family) and order (columns), and beside it
    the difference of each other order from ``reference`` (the baseline, or the first order)."""
    languages = [code for family in families for code in sorted(c for c, f in family_of.items() if f == family)]
    languages = [code for code in languages if code in set(means["language"])]
    table = means.pivot_table(index="language", columns="order", values="score").reindex(index=languages)
    table = table.reindex(columns=[o for o in orders if o in table.columns]) * scale
    has_diff = reference in table.columns and table.shape[1] >= 2
    diff = table.drop(columns=[reference]).sub(table[reference], axis=0) if has_diff else None
    n_rows, n_cols = table.shape
    n_diff = diff.shape[1] if has_diff else 0
    # 0.95 in below the cells and 0.62 in above them are fixed: one language still needs a row's height
    height = max(1.35 + 0.175 * n_rows, 0.95 + 0.62 + 0.175)
    fig = _figure(TEXT_WIDTH_IN, height)
    digits = 1 if scale == 100 else 3
    with matplotlib.rc_context(_RC):
        cell_w = min(0.62, 3.9 / max(1, n_cols + n_diff))
        left, gap = 1.45, 0.35
        bottom, top = 0.95 / height, 1 - 0.62 / height
        ax = fig.add_axes((left / TEXT_WIDTH_IN, bottom, n_cols * cell_w / TEXT_WIDTH_IN, top - bottom))
        image = _cells(ax, table.to_numpy(dtype=float), cmap="cividis")
        _annotate(ax, table.to_numpy(), image, digits, signed=False)
        _axes_labels(ax, list(table.columns), [language_label.get(c, c) for c in languages])
        fig.text(left / TEXT_WIDTH_IN, 1 - 0.12 / height, f"mean {unit}", fontsize=7.5, fontweight="bold", va="top")
        _colorbar(fig, image, ax, height)
        axes = [ax]
        if has_diff:
            x0 = left + n_cols * cell_w + gap
            ax2 = fig.add_axes((x0 / TEXT_WIDTH_IN, bottom, n_diff * cell_w / TEXT_WIDTH_IN, top - bottom))
            values = diff.to_numpy()
            bound = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
            norm = TwoSlopeNorm(vcenter=0.0, vmin=-bound or -1e-9, vmax=bound or 1e-9)
            image2 = _cells(ax2, values, cmap="PuOr", norm=norm)
            _annotate(ax2, values, image2, digits, signed=True)
            _axes_labels(ax2, [f"{c}\n\u2212 {reference}" for c in diff.columns], None)
            fig.text(x0 / TEXT_WIDTH_IN, 1 - 0.12 / height, f"difference from {reference}", fontsize=7.5, fontweight="bold",
                     va="top")  # fmt: skip
            _colorbar(fig, image2, ax2, height)
            axes.append(ax2)
        # family bands: separators across both panels, family names right of the last panel
        starts = {}
        for i, code in enumerate(languages):
            starts.setdefault(family_of[code], []).append(i)
        for family, rows in starts.items():
            for each in axes:
                if rows[0] > 0:
                    each.axhline(rows[0] - 0.5, color="white", lw=2.2)
            axes[-1].text(1.04, (rows[0] + rows[-1]) / 2, family, transform=axes[-1].get_yaxis_transform(),
                          va="center", ha="left", fontsize=7, fontweight="bold")  # fmt: skip
            if len(rows) > 1:
                axes[-1].plot([1.025, 1.025], [rows[0] - 0.35, rows[-1] + 0.35], transform=axes[-1].get_yaxis_transform(),
                              color="#333333", lw=0.8, clip_on=False)  # fmt: skip
    return fig


def _cells(ax, values: np.ndarray, *, cmap: str, norm=None):
    """A heatmap as vector rectangles (pcolormesh), laid out as imshow would: cell (i, j) centred on (j, i)."""
    n_rows, n_cols = values.shape
    mesh = ax.pcolormesh(np.arange(n_cols + 1) - 0.5, np.arange(n_rows + 1) - 0.5, np.ma.masked_invalid(values),
                         cmap=cmap, norm=norm, edgecolors="none", rasterized=False)  # fmt: skip
    ax.set_xlim(-0.5, n_cols - 0.5)
    ax.set_ylim(n_rows - 0.5, -0.5)
    return mesh


def _annotate(ax, values: np.ndarray, image, digits: int, *, signed: bool) -> None:
    n_rows, n_cols = values.shape
    size = 6.4 if n_rows <= 40 else 5.6
    for i in range(n_rows):
        for j in range(n_cols):
            value = values[i, j]
            if not np.isfinite(value):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=size, color="#888888")
                continue
            text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=size,
                    color=_text_color(image.cmap(image.norm(value))))  # fmt: skip


def _axes_labels(ax, columns: list[str], rows: list[str] | None) -> None:
    ax.set_xticks(range(len(columns)), columns)
    ax.xaxis.tick_top()
    ax.tick_params(axis="x", length=0, pad=2, labelsize=6.8)
    if rows is None:
        ax.set_yticks([])
    else:
        ax.set_yticks(range(len(rows)), rows)
        ax.tick_params(axis="y", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _colorbar(fig: Figure, image, ax, height: float) -> None:
    box = ax.get_position()
    cax = fig.add_axes((box.x0, 0.32 / height, box.width, 0.09 / height))
    bar = fig.colorbar(image, cax=cax, orientation="horizontal")
    bar.outline.set_linewidth(0.4)
    bar.ax.tick_params(labelsize=6, length=2)
    bar.ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))


# --- across-seed distributions -----------------------------------------------------------


def seed_distributions(
    seed_scores: pd.DataFrame,
    *,
    panels: Sequence[str],
    orders: Sequence[str],
    colors: Mapping[str, str],
    scale: float,
    unit: str,
    panel_note: Mapping[str, str] | None = None,
) -> Figure:
    """One panel per family: each seed's family-mean score per order (points; the same seed
    joined across orders), the mean (bar) and +-1 SD (whisker)."""
    n = len(panels)
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    # A panel is ~(text width / (ncols + 0.38 gaps)) wide; names longer than their slot (7 pt ~ 0.055 in
    # a character) are turned.
    slot = TEXT_WIDTH_IN * 0.915 / (ncols + 0.38 * (ncols - 1)) / len(orders)
    long_labels = 0.055 * max(len(o) for o in orders) > 0.9 * slot
    panel_h = 1.55 + (0.25 if long_labels else 0)
    height = 0.35 + panel_h * nrows
    fig = _figure(TEXT_WIDTH_IN, height)
    with matplotlib.rc_context(_RC):
        grid = fig.add_gridspec(nrows, ncols, left=0.075, right=0.99, top=1 - 0.3 / height, bottom=(0.45 if long_labels else 0.28) / height,
                                hspace=0.75 if long_labels else 0.55, wspace=0.38)  # fmt: skip
        x_of = {o: i for i, o in enumerate(orders)}
        for k, panel in enumerate(panels):
            ax = fig.add_subplot(grid[k // ncols, k % ncols])
            data = seed_scores[seed_scores["panel"] == panel]
            seeds = sorted(data["seed"].unique())
            offsets = np.linspace(-0.16, 0.16, len(seeds)) if len(seeds) > 1 else np.zeros(1)
            offset_of = dict(zip(seeds, offsets))
            # each seed joined across orders: one polyline per seed, NaN-separated, drawn in one call
            ordered = data.assign(x=data["order"].map(x_of) + data["seed"].map(offset_of)).sort_values(["seed", "x"])
            xs, ys = [], []
            for _, runs in ordered.groupby("seed", sort=False):
                xs.extend(runs["x"].tolist() + [np.nan])
                ys.extend((runs["score"] * scale).tolist() + [np.nan])
            ax.plot(xs, ys, color="#bbbbbb", lw=0.5, zorder=1)
            for order in orders:
                points = data[data["order"] == order]
                if points.empty:
                    continue
                xs = x_of[order] + points["seed"].map(offset_of).to_numpy()
                ys = points["score"].to_numpy() * scale
                ax.scatter(xs, ys, s=11, color=colors.get(order, "#333333"), edgecolor="white", linewidth=0.4, zorder=3)
                mean = ys.mean()
                ax.plot([x_of[order] - 0.3, x_of[order] + 0.3], [mean, mean], color="#111111", lw=1.1, zorder=4)
                if len(ys) > 1:
                    sd = ys.std(ddof=1)
                    ax.plot([x_of[order] + 0.3] * 2, [mean - sd, mean + sd], color="#111111", lw=0.8, zorder=4)
            ax.set_xticks(range(len(orders)), orders, rotation=30 if long_labels else 0,
                          ha="right" if long_labels else "center")  # fmt: skip
            ax.set_xlim(-0.55, len(orders) - 0.45)
            ax.tick_params(axis="x", length=0)
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
            ax.grid(axis="y", color="#e3e3e3", lw=0.5, zorder=0)
            note = (panel_note or {}).get(panel, "")
            ax.set_title(f"{panel}{note}", fontsize=7.2, fontweight="bold", loc="left")
            if k % ncols == 0:
                ax.set_ylabel(unit)
    return fig


# --- ASO ----------------------------------------------------------------------------------


def aso_matrix(aso: pd.DataFrame, *, rows: Sequence[str], pairs: Sequence[str]) -> Figure:
    """eps_min of "A vs B" (columns) per family (rows): below 0.5, A is almost stochastically
    better than B; above, it is not."""
    table = aso.pivot_table(index="group", columns="term", values="statistic", aggfunc="first")
    table = table.reindex(index=[r for r in rows if r in table.index], columns=list(pairs))
    n_rows, n_cols = table.shape
    rotate = max(len(p) for p in pairs) > 10 or n_cols > 6
    head = 0.95 if rotate else 0.45
    height = head + 0.55 + 0.19 * n_rows
    cell_w = min(0.85, 4.9 / max(1, n_cols))
    fig = _figure(TEXT_WIDTH_IN, height)
    with matplotlib.rc_context(_RC):
        left = 1.45
        ax = fig.add_axes((left / TEXT_WIDTH_IN, 0.55 / height, n_cols * cell_w / TEXT_WIDTH_IN, (0.19 * n_rows) / height))
        values = table.to_numpy(dtype=float)
        norm = TwoSlopeNorm(vcenter=0.5, vmin=0.0, vmax=1.0)
        image = _cells(ax, values, cmap="PuOr_r", norm=norm)
        _annotate(ax, values, image, 2, signed=False)
        ax.set_xticks(range(n_cols), list(table.columns), rotation=35 if rotate else 0, ha="left" if rotate else "center")
        ax.xaxis.tick_top()
        ax.set_yticks(range(n_rows), list(table.index))
        ax.tick_params(length=0, labelsize=6.8)
        for spine in ax.spines.values():
            spine.set_visible(False)
        cax = fig.add_axes((left / TEXT_WIDTH_IN, 0.2 / height, min(n_cols * cell_w, 2.6) / TEXT_WIDTH_IN, 0.09 / height))
        bar = fig.colorbar(image, cax=cax, orientation="horizontal", ticks=[0, 0.25, 0.5, 0.75, 1])
        bar.outline.set_linewidth(0.4)
        bar.ax.tick_params(labelsize=6, length=2)
        cax.text(1.04, 0.5, "\u03b5_min of 'A vs B': below 0.5, A is better", transform=cax.transAxes, va="center",
                 ha="left", fontsize=6.5)  # fmt: skip
    return fig
