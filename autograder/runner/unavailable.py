"""Stands in, in the sandbox's runtime, for a module that ships inside an allowed package but that no graded
notebook may use (:data:`autograder.sandbox.STUBBED_MODULES`: ``torch.distributions``, which torch imports
itself, so it cannot simply be left out). The runtime holds this file as that module's ``__init__.py``, next
to the few submodules the package around it needs while importing (``torch.optim`` reads
``torch.distributions.constraints``): those import as usual, and any other name taken from it fails with one
line, however it is reached (an import, ``getattr`` with a computed name, ``vars``).
"""
import importlib
import os


def __getattr__(name):
    if name.startswith("__") and name.endswith("__"):   # Python's own probes (``__wrapped__`` ...) stay quiet
        raise AttributeError(name)
    if os.path.isfile(os.path.join(os.path.dirname(__file__), f"{name}.py")):   # a submodule kept in place
        return importlib.import_module(f"{__name__}.{name}")
    raise ImportError(f"{__name__}.{name} is not available when the grader runs a notebook: write it with "
                      f"the tensor operations the assignment allows", name=__name__)
