"""Helpers every notebook uses in its first cell: seeding and picking a device."""
from __future__ import annotations

import os
import random

import numpy as np

try:
    import torch
except ImportError:     # the grader runs the NumPy assignments without PyTorch
    torch = None

__all__ = ["seed_everything", "get_device"]


def seed_everything(seed: int = 0) -> int:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (all devices, where it is installed) so a
    notebook reruns to the same numbers.

    A notebook's first cell calls it; it sets those process-wide generators on purpose, and nothing in the
    library calls it (estimators take ``random_state``). It leaves the environment alone: the hash seed
    (``PYTHONHASHSEED``) only takes effect when set before Python starts, e.g. in the kernel's environment.

    Returns
    -------
    int
        The seed, as an int.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if torch is not None:
        torch.manual_seed(seed)
    return seed


def get_device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``prefer`` if given, else CUDA when present, else Apple's MPS, else the CPU.

    The environment variable ``COURSE_DEVICE`` (e.g. ``cpu``) overrides the automatic choice.
    """
    if torch is None:
        raise ImportError("get_device needs PyTorch, which is not installed here: in the NumPy assignments "
                          "(graded without PyTorch) leave it out and use NumPy arrays")
    choice = prefer or os.environ.get("COURSE_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
