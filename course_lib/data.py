"""The course's data sets, shipped inside the package (no network needed)."""
from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_faithful"]


def load_faithful(as_frame: bool = False):
    """Old Faithful geyser eruptions: 272 rows of (eruption duration in minutes, waiting time in minutes).

    Returns
    -------
    X : ndarray of shape (272, 2), float64
        Columns ``eruptions`` and ``waiting``.
    """
    with resources.files("course_lib.datasets").joinpath("faithful.csv").open("r") as fh:
        rows = [line.strip().split(",") for line in fh if line.strip()]
    X = np.array([[float(r[1]), float(r[2])] for r in rows[1:]], dtype=np.float64)
    return X
