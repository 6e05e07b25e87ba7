"""One way to save a figure: ``savefig(fig_id)``, deterministic bytes, one style for the whole course."""
from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib

__all__ = ["savefig", "figures_dir", "FIG_ID_PATTERN"]

FIG_ID_PATTERN = re.compile(r"^fig_\d\d_[a-z0-9_]+$")


def figures_dir() -> Path:
    """Where figures go: ``$COURSE_FIGURES_DIR`` if set, else ``lectures/figures`` of the working tree."""
    env = os.environ.get("COURSE_FIGURES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "lectures" / "figures"


def savefig(fig_id: str, fig=None, directory: str | os.PathLike | None = None) -> Path:
    """Save ``fig`` (default: the current figure) as ``<directory>/<fig_id>.png`` with no timestamps.

    ``fig_id`` is ``fig_<NN>_<name>``: the lecture number and a short snake_case name.
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
