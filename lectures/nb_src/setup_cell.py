# Setup: the same first cell in every lecture (seeds, device, paths, plotting style, polls).
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, Markdown, display

import course_lib
from course_lib import get_device, seed_everything
from course_lib.plotting import COLORS, figures_dir, savefig, use_style
from course_lib.polls import ask

SEED = seed_everything(0)
DEVICE = get_device()
LECTURE_DIR = Path.cwd()
FIGURES = figures_dir()  # savefig("fig_NN_name") writes FIGURES / "fig_NN_name.png"
use_style()


def show(path):
    """Display the PNG that savefig just wrote (the notebook shows the very bytes of lectures/figures/)."""
    plt.close("all")
    display(Image(filename=str(path)))


def fmt(a):
    """A number, vector or matrix rounded to 2 decimals, for a table (``[a, b]``, ``[a, b; c, d]``)."""
    a = np.round(np.asarray(a, dtype=float), 2) + 0.0              # + 0.0: never print -0.00
    if a.ndim == 0:
        return f"{a:.2f}"
    if a.ndim == 1:
        return "[" + ", ".join(f"{v:.2f}" for v in a) + "]"
    return "[" + "; ".join(", ".join(f"{v:.2f}" for v in row) for row in a) + "]"
