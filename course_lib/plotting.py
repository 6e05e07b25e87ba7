"""One way to save a figure: ``savefig(fig_id)``, deterministic bytes, one style for the whole course.

Every lecture figure has an id ``fig_<NN>_<name>`` (``NN`` the lecture's number), is listed once in the figure
registry ``lectures/figures/registry.json`` (id → lecture and caption), and is written only by
:func:`savefig`. :func:`check_registry` compares what the notebooks wrote with the registry.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import matplotlib

__all__ = ["savefig", "figures_dir", "FIG_ID_PATTERN", "STYLE", "use_style", "COLORS",
           "registry_path", "load_registry", "check_registry", "lectures_dir", "gaussian_ellipse",
           "decision_boundary", "image_grid", "to_numpy"]

FIG_ID_PATTERN = re.compile(r"^fig_\d\d_[a-z0-9_]+$")

# The course's palette: the first two colours are the two classes / components everywhere.
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf"]

# One style for every figure: legible when projected, no dependence on the machine's matplotlibrc.
STYLE = {
    "figure.figsize": (6.0, 4.0),
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=COLORS),
    "image.cmap": "viridis",
    "lines.linewidth": 1.8,
    "svg.hashsalt": "course",
}


def use_style() -> None:
    """Apply the course style to every figure drawn afterwards (call once, in a notebook's setup cell)."""
    matplotlib.rcParams.update(STYLE)


def lectures_dir() -> Path:
    """The ``lectures`` folder of the course folder (``course_lib.paths.course_root``)."""
    from course_lib.paths import course_root
    return course_root() / "lectures"


def figures_dir() -> Path:
    """Where figures go: ``$COURSE_FIGURES_DIR`` if set, else ``lectures/figures`` of the working tree."""
    env = os.environ.get("COURSE_FIGURES_DIR")
    if env:
        return Path(env)
    return lectures_dir() / "figures"


def savefig(fig_id: str, fig=None, directory: str | os.PathLike | None = None) -> Path:
    """Save ``fig`` (default: the current figure) as ``<directory>/<fig_id>.png`` with no timestamps.

    ``fig_id`` is ``fig_<NN>_<name>``: the lecture number and a short snake_case name. Saving the same
    figure twice gives the same bytes (no date or software version in the file).
    """
    import matplotlib.pyplot as plt

    if not FIG_ID_PATTERN.match(fig_id):
        raise ValueError(f"fig_id {fig_id!r} must look like 'fig_02_gmm_iterations' (fig_<lecture>_<name>)")
    fig = fig if fig is not None else plt.gcf()
    out = Path(directory) if directory is not None else figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{fig_id}.png"
    tmp = path.with_suffix(".png.tmp")
    with matplotlib.rc_context({"svg.hashsalt": "course"}):
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------------------------
# drawing helpers the lectures share
# ------------------------------------------------------------------------------------------------------------
def to_numpy(a):
    """A NumPy array from an array, a list or a tensor on any device (detached)."""
    import numpy as np
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def gaussian_ellipse(ax, mean, cov, n_std: float = 2.0, **kwargs):
    """Draw the ``n_std``-standard-deviation contour of a 2-D Gaussian ``N(mean, cov)`` on ``ax``.

    Parameters
    ----------
    mean : (2,)
    cov : (2, 2) symmetric positive semi-definite
    kwargs : passed to ``matplotlib.patches.Ellipse`` (default: no fill, line width 2)
    """
    import numpy as np
    from matplotlib.patches import Ellipse

    mean, cov = to_numpy(mean).reshape(2), to_numpy(cov).reshape(2, 2)
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    vals = np.clip(vals, 0, None)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    width, height = 2 * n_std * np.sqrt(vals[1]), 2 * n_std * np.sqrt(vals[0])
    kwargs = {"fill": False, "lw": 2, **kwargs}
    patch = Ellipse(xy=mean, width=width, height=height, angle=angle, **kwargs)
    ax.add_patch(patch)
    return patch


def decision_boundary(ax, proba_fn, xlim, ylim, n: int = 300, level: float = 0.5, shade: bool = True,
                      colors=None, **kwargs):
    """Draw where ``proba_fn(points)[:, 1] == level`` (the Bayes decision boundary) over a grid.

    Parameters
    ----------
    proba_fn : callable mapping (m, 2) points to (m, 2) class probabilities
    xlim, ylim : (low, high)
    shade : bool
        Also tint each decision region lightly.
    kwargs : passed to ``ax.contour`` for the boundary line
    """
    import numpy as np

    xs, ys = np.linspace(*xlim, n), np.linspace(*ylim, n)
    xx, yy = np.meshgrid(xs, ys)
    p = to_numpy(proba_fn(np.column_stack([xx.ravel(), yy.ravel()])))[:, 1].reshape(xx.shape)
    colors = colors or COLORS[:2]
    if shade:
        ax.contourf(xx, yy, p, levels=[0, level, 1], colors=colors, alpha=0.08)
    kwargs = {"colors": "k", "linewidths": 1.8, **kwargs}
    return ax.contour(xx, yy, p, levels=[level], **kwargs)


def image_grid(ax, images, ncols: int, shape=None, pad: int = 1, cmap: str = "gray_r", vmin=0.0, vmax=1.0):
    """Tile ``images`` (n, h, w) or (n, h*w) row by row into one picture on ``ax``, without axes.

    ``shape`` is (h, w) when the images come flattened (default: square).
    """
    import math
    import numpy as np

    imgs = to_numpy(images).astype(float)
    n = imgs.shape[0]
    if imgs.ndim == 2:
        h, w = shape if shape is not None else (math.isqrt(imgs.shape[1]),) * 2
        imgs = imgs.reshape(n, h, w)
    h, w = imgs.shape[1:]
    nrows = math.ceil(n / ncols)
    canvas = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), np.nan)
    for i in range(n):
        r, c = divmod(i, ncols)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = imgs[i]
    cm = matplotlib.colormaps[cmap].copy()
    cm.set_bad("white")
    ax.imshow(canvas, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return canvas


# ------------------------------------------------------------------------------------------------------------
# the figure registry
# ------------------------------------------------------------------------------------------------------------
def registry_path() -> Path:
    """The figure registry: ``lectures/figures/registry.json`` of the working tree."""
    return lectures_dir() / "figures" / "registry.json"


def load_registry(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """``{fig_id: {"lecture": "02_expectation_maximization", "caption": ...}}``, validated.

    Raises ``ValueError`` when an id is malformed or its number disagrees with its lecture.
    """
    p = Path(path) if path is not None else registry_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"figure registry {p} not found") from None
    figures = data.get("figures") if isinstance(data, dict) else None
    if not isinstance(figures, dict):
        raise ValueError(f"figure registry {p} must be an object with a mapping 'figures'")
    for fig_id, entry in figures.items():
        if not FIG_ID_PATTERN.match(fig_id):
            raise ValueError(f"figure registry: id {fig_id!r} must look like fig_<NN>_<name>")
        lecture = entry.get("lecture", "") if isinstance(entry, dict) else ""
        if not lecture.startswith(fig_id[4:6] + "_"):
            raise ValueError(f"figure registry: {fig_id} must belong to lecture {fig_id[4:6]}_..., not {lecture!r}")
        if not entry.get("caption"):
            raise ValueError(f"figure registry: give {fig_id} a caption")
    return figures


def check_registry(written: dict[str, set[str] | list[str]], registry: dict | None = None,
                   lectures: list[str] | None = None) -> list[str]:
    """Compare the figures each lecture wrote with the registry; return the problems (empty when in sync).

    Parameters
    ----------
    written : {lecture: ids of the figures it wrote}
    registry : the registry (default: :func:`load_registry`)
    lectures : the lectures to compare (default: the keys of ``written``)
    """
    registry = load_registry() if registry is None else registry
    lectures = list(written) if lectures is None else lectures
    problems = []
    owner: dict[str, str] = {}
    for lecture in lectures:
        for fig_id in sorted(written.get(lecture, ())):
            if fig_id in owner:
                problems.append(f"{fig_id} is written by both {owner[fig_id]} and {lecture}")
            owner[fig_id] = lecture
            entry = registry.get(fig_id)
            if entry is None:
                problems.append(f"{lecture} writes {fig_id}, which is not in the figure registry")
            elif entry["lecture"] != lecture:
                problems.append(f"{fig_id} is registered to {entry['lecture']} but written by {lecture}")
    for fig_id, entry in registry.items():
        if entry["lecture"] in lectures and fig_id not in owner:
            problems.append(f"the registry lists {fig_id} ({entry['lecture']}) but no notebook writes it")
    return problems
