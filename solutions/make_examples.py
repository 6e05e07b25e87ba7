"""Write the sample submissions of each assignment (examples/HW/*.ipynb) from its solution notebook.

The solution notebook (solutions/HW/HW.ipynb) is the one source: the instructor edits it, ``course release
HW`` makes the student notebook from it, and this script makes the samples the grader's tests and
``course demo`` use: the complete answer, the released stub, and one sample per planted known mistake
(``MISTAKES``). A test fails when the committed samples drift from what this script writes. Usage::

    python solutions/make_examples.py            # rewrite every assignment's samples
    python solutions/make_examples.py hw2_em     # one assignment
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from autograder.suites import ASSIGNMENTS  # noqa: E402 - the one registry of the course's assignments


# ------------------------------------------------------------------------------------------ sample submissions
#: Known mistakes planted in sample submissions: {hw: {sample name: [(function, old text, new text), ...]}}.
#: Each sample is the complete solution with these replacements in the named functions' cells.
MISTAKES = {
    "hw1_mle": {
        "unbiased_covariance": [
            ("gaussian_mle", "cov = diff.T @ diff / X.shape[0]", "cov = diff.T @ diff / (X.shape[0] - 1)"),
            ("gda_fit", "/ np.sum(y == c) for c in range(C)])", "/ (np.sum(y == c) - 1) for c in range(C)])"),
        ],
        "missing_logsumexp": [
            ("gda_predict_proba", "log_joint -= log_joint.max(axis=1, keepdims=True)\n", ""),
        ],
    },
    "hw2_em": {
        "missing_logsumexp": [
            ("e_step", "    top = log_joint.max(axis=1, keepdims=True)\n"
                       "    log_norm = top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))\n",
             "    log_norm = np.log(np.exp(log_joint).sum(axis=1))\n"),
        ],
        "mstep_divided_by_n": [
            ("m_step", "means = resp.T @ X / Nk[:, None]", "means = resp.T @ X / X.shape[0]"),
            ("m_step", "@ (X - means[k]) / Nk[k]", "@ (X - means[k]) / X.shape[0]"),
        ],
    },
    "hw3_linear": {
        "unbiased_covariance": [
            ("pca", "S = X.T @ X / X.shape[0]", "S = X.T @ X / (X.shape[0] - 1)"),
        ],
        "sum_vs_mean": [
            ("fa_log_likelihood", "return float(-0.5 * np.sum(sol ** 2) - N * np.log(np.diag(L)).sum() "
                                  "- 0.5 * N * d * np.log(2 * np.pi))",
             "return float(-0.5 * np.sum(sol ** 2) - N * np.log(np.diag(L)).sum() "
             "- 0.5 * N * d * np.log(2 * np.pi)) / N"),
        ],
    },
    "hw4_vae": {
        "kl_wrong_sign": [
            ("kl_divergence", "return 0.5 * torch.sum(torch.exp(logvar) + mu ** 2 - 1.0 - logvar, dim=-1)",
             "return -0.5 * torch.sum(torch.exp(logvar) + mu ** 2 - 1.0 - logvar, dim=-1)"),
        ],
        "sum_vs_mean": [
            ("negative_elbo", "return torch.mean(kl_divergence(mu, logvar) - bernoulli_log_likelihood(x, logits))",
             "return torch.sum(kl_divergence(mu, logvar) - bernoulli_log_likelihood(x, logits))"),
        ],
    },
}

EXAMPLES = HERE.parent / "examples"


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def example_notebooks(hw: str) -> dict:
    """{name: notebook} of the sample submissions of ``hw``: complete, stub, and one per planted mistake.

    Each starts from the released student notebook (what a student receives) with the solution cells
    filled in as a student would, without the solution markers.
    """
    import copy

    sys.path.insert(0, str(HERE.parent))
    from autograder.release import release_notebook

    solution = nbformat.read(str(HERE / hw / f"{hw}.ipynb"), as_version=4)
    stub = release_notebook(solution)
    answers = {c.metadata["nbgrader"]["grade_id"]: _strip_markers(c.source) for c in solution.cells
               if c.metadata.get("nbgrader", {}).get("solution")}

    def filled(changes=()):
        nb = copy.deepcopy(stub)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.metadata.get("nbgrader", {}).get("solution"):
                source = answers[gid]
                for fn, old, new in changes:
                    if fn == gid:
                        if old not in source:
                            raise ValueError(f"{hw}: planted mistake text not found in {fn}: {old!r}")
                        source = source.replace(old, new)
                cell.source = source
        return nb

    out = {"complete": filled(), "stub": copy.deepcopy(stub)}
    for name, changes in MISTAKES.get(hw, {}).items():
        out[name] = filled(changes)
    return out


def write_examples(hw: str) -> list:
    folder = EXAMPLES / hw
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, nb in example_notebooks(hw).items():
        path = folder / f"{name}.ipynb"
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def main(argv=None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(ASSIGNMENTS)
    for hw in names:
        if hw not in ASSIGNMENTS:
            print(f"make_examples: unknown assignment {hw!r}; choose from {', '.join(ASSIGNMENTS)}", file=sys.stderr)
            return 2
        for path in write_examples(hw):
            print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
