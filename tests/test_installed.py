"""The command set installed like any package: a plain (non-editable) wheel in a fresh virtual environment runs
`course release/check/grade/figures/demo` on a copy of the course folder, found from the current directory or
`--root DIR`, and nothing of this checkout is reachable from it."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE_PARTS = ("solutions", "assignments", "examples", "lectures", "ci", "tests/fixtures", "pyproject.toml")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel (no editable install); the dependencies come from this environment's
    site-packages through a .pth file, so nothing is downloaded."""
    tmp = tmp_path_factory.mktemp("installed")
    dist = tmp / "dist"
    build = tmp / "src"
    shutil.copytree(ROOT, build, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__",
                                                                 "benchmarks", "lectures"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(build)], check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("course_generative_models-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "course_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    course = tmp / "my-course"                     # a copy of the course folder, without the package sources
    for part in COURSE_PARTS:
        src = ROOT / part
        (shutil.copytree(src, course / part, ignore=shutil.ignore_patterns("__pycache__"))
         if src.is_dir() else shutil.copy(src, course / part))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", COURSE_GRADER_SALT="installed-salt",
               COURSE_GRADER_STATE=str(tmp / "state"), COURSE_MIN_ISOLATION="none", MPLBACKEND="Agg")
    return {"venv": venv, "course": course, "env": env, "tmp": tmp}


def course(inst, *args, cwd=None, timeout=600):
    return subprocess.run([str(inst["venv"] / "bin" / "course"), *args], cwd=cwd or inst["course"], env=inst["env"],
                          capture_output=True, text=True, timeout=timeout)


def test_the_package_is_the_wheel_not_this_checkout(installed):
    r = subprocess.run([str(installed["venv"] / "bin" / "python"), "-c",
                        "import autograder, course_lib; print(autograder.__file__); print(course_lib.__file__)"],
                       cwd=installed["tmp"], env=installed["env"], capture_output=True, text=True, check=True)
    assert all(str(installed["venv"]) in line for line in r.stdout.split()), r.stdout


def test_release_finds_the_course_from_the_current_folder_or_root(installed):
    r = course(installed, "release", "hw2_em", "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    r = course(installed, "--root", str(installed["course"]), "release", "hw1_mle", "--check", cwd=installed["tmp"])
    assert r.returncode == 0, r.stdout + r.stderr
    r = course(installed, "release", "hw1_mle", "--check", cwd=installed["tmp"])
    assert r.returncode != 0 and "course folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_check_and_grade_run_on_the_course_copy(installed):
    nb = installed["course"] / "examples" / "hw2_em" / "complete.ipynb"
    r = course(installed, "check", str(nb))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = installed["tmp"] / "graded"
    r = course(installed, "grade", str(nb), "--assignment", "hw2_em", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((out / "complete" / "results.json").read_text())["score"] == 100


def test_demo_and_figures_use_the_course_copy(installed):
    r = course(installed, "demo", timeout=900)
    assert r.returncode == 0 and "complete" in r.stdout and "100" in r.stdout, r.stderr[-2000:]
    figures_dir = installed["tmp"] / "figures"
    env = dict(installed["env"], COURSE_FIGURES_DIR=str(figures_dir))
    r = subprocess.run([str(installed["venv"] / "bin" / "course"), "figures", "01"], cwd=installed["course"],
                       env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    made = sorted(p.name for p in figures_dir.glob("fig_01_*.png"))
    assert made and all((ROOT / "lectures" / "figures" / n).read_bytes() == (figures_dir / n).read_bytes()
                        for n in made)   # the same bytes as the committed figures
    from autograder import figures
    here = subprocess.run([str(installed["venv"] / "bin" / "python"), "-c",
                           "from autograder.figures import lecture_notebooks; print(len(lecture_notebooks()))"],
                          cwd=installed["course"] / "lectures", env=env, capture_output=True, text=True, check=True)
    assert int(here.stdout) == len(figures.lecture_notebooks()) == 4
