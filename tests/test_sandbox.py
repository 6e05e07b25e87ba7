"""The sandbox: limits, timeouts, a scrubbed environment, and the isolation levels. In a namespace sandbox
(bubblewrap) a run sees no network, no host process, no other run, no copy of the course and nothing of the
host's Python installations; memory, processes and disk are capped for the run as a whole; a nested kernel
cannot touch its supervisor. Without namespaces, a private user that can read nothing of the grader."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.sandbox import Limits, SandboxError, describe_exit, run_sandboxed

REPO = Path(__file__).resolve().parents[1]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="a private sandbox user needs a grader running as root")
namespaces = pytest.mark.skipif(sandbox.isolation_level() != "namespaces",
                                reason="this host offers no namespaces (install bubblewrap)")
#: A run uses the sandbox's own Python (its runtime) only as root or with namespaces; else the grader's own.
own_runtime = pytest.mark.skipif(os.geteuid() != 0 and sandbox.isolation_level() != "namespaces",
                                 reason="runs use the sandbox's own Python only as root or with namespaces")
FAST = Limits(wall_seconds=30, memory_bytes=1 << 30, max_processes=64, file_size_bytes=1 << 20,
              output_bytes=4096, cpu_seconds=20, disk_bytes=64 << 20)


def limits(**kw):
    return Limits(**{**FAST.as_dict(), **kw})


@pytest.fixture
def rundir():
    outer = Path(tempfile.mkdtemp(prefix="course-test-run-"))
    os.chmod(outer, 0o711)
    d = outer / "run"
    d.mkdir()
    yield d
    import shutil
    shutil.rmtree(outer, ignore_errors=True)


def py(code, rundir, lim=FAST, **kw):
    return run_sandboxed(["{python}", "-I", "-c", code], rundir, lim, **kw)


def test_limits_are_validated():
    with pytest.raises(ValueError, match="memory_bytes"):
        Limits(memory_bytes=0)
    with pytest.raises(ValueError, match="wall_seconds"):
        Limits(wall_seconds=-1)
    with pytest.raises(ValueError, match="disk_bytes"):
        Limits(disk_bytes=0)


def test_describe_exit_names_the_signal():
    assert describe_exit(3) == "exit status 3"
    assert "segmentation fault" in describe_exit(-signal.SIGSEGV)
    assert "file-size limit" in describe_exit(-signal.SIGXFSZ)


def test_isolation_level_can_be_lowered_but_not_raised(monkeypatch):
    assert sandbox.isolation_level() in sandbox.ISOLATION_LEVELS
    monkeypatch.setenv("COURSE_SANDBOX_ISOLATION", "none")
    assert sandbox.isolation_level() == "none"
    monkeypatch.setenv("COURSE_SANDBOX_ISOLATION", "bogus")
    with pytest.raises(SandboxError, match="COURSE_SANDBOX_ISOLATION"):
        sandbox.isolation_level()


def test_environment_is_scrubbed_and_threads_capped(rundir, monkeypatch):
    monkeypatch.setenv("COURSE_GRADER_SALT", "do-not-leak")
    r = py("import json, os; print(json.dumps(dict(os.environ)))", rundir, limits(threads=2))
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)
    assert not any("SALT" in k for k in env)
    assert env["OMP_NUM_THREADS"] == "2" and env["MPLBACKEND"] == "Agg"
    assert env["HOME"] == env["COURSE_SANDBOX_RUN"]
    assert r.isolation == sandbox.isolation_level()


def test_wall_clock_budget_kills_the_whole_group(rundir):
    code = ("import os, time\n"
            "if os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
            "open('started', 'w').close(); time.sleep(60)")
    r = py(code, rundir, limits(wall_seconds=3))
    assert r.timed_out and "3 s" in r.reason and r.duration < 8
    if os.geteuid() == 0:  # the setsid'd grandchild is gone too
        assert not sandbox._uid_has_processes(r.uid)


def test_memory_file_size_and_cpu_limits(rundir):
    r = py("x = bytearray(2 << 30)", rundir)
    assert r.returncode != 0 and "MemoryError" in r.stderr
    r = py("open('big', 'wb').write(b'x' * (2 << 20))", rundir)
    assert r.returncode != 0 and "File too large" in r.stderr  # Python ignores SIGXFSZ: the write fails
    r = py("while True: pass", rundir, limits(cpu_seconds=1))
    assert r.returncode == -signal.SIGXCPU and "CPU" in r.reason


def test_output_flood_is_truncated_keeping_head_and_tail(rundir):
    r = py("import sys\nprint('HEAD')\nfor _ in range(2000): sys.stdout.write('x' * 1000)\nprint('TAIL')", rundir)
    assert r.returncode == 0
    assert len(r.stdout) < 4096 + 200 and r.stdout.startswith("HEAD") and r.stdout.rstrip().endswith("TAIL")
    assert "dropped" in r.stdout


@pytest.fixture
def decoy():
    """A world-readable copy of the course outside the repository, as another checkout would be."""
    import shutil
    d = Path(tempfile.mkdtemp(prefix="course-decoy-"))
    shutil.copytree(REPO / "course_lib", d / "course_lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "autograder", d / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    for p in [d, *d.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@namespaces
def test_namespace_sandbox_sees_nothing_of_the_host(rundir, decoy):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    sentinel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "course-sentinel-marker"])
    secret = Path(tempfile.mkdtemp(prefix="course-test-grader-")) / "salt"
    secret.write_text("secret")
    shm = Path("/dev/shm/course-test-host-file")
    shm.write_text("host")
    try:
        code = f"""
import glob, json, os, socket, sys
out = {{"read": [], "imported": [], "net": None, "procs": []}}
for p in {[str(secret), str(decoy / 'course_lib' / 'mixture.py'), str(REPO / 'course_lib' / 'mixture.py'),
           str(shm), '/etc/shadow', '/etc/passwd']!r}:
    try:
        open(p, "rb").read(1); out["read"].append(p)
    except OSError:
        pass
sys.path[:0] = [{str(decoy)!r}, {str(REPO)!r}, "/usr/local/lib/python3.11/site-packages"]
for m in ("sklearn", "course_lib.mixture", "autograder"):
    try:
        __import__(m); out["imported"].append(m)
    except ImportError:
        pass
s = socket.socket(); s.settimeout(2)
try:
    s.connect(("127.0.0.1", {port})); out["net"] = "connected"
except OSError as e:
    out["net"] = type(e).__name__
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            out["procs"].append(open(f"/proc/{{pid}}/cmdline", "rb").read().decode(errors="replace"))
        except OSError:
            pass
out["tmp"] = sorted(glob.glob("/tmp/*")) + sorted(glob.glob("/dev/shm/*"))
out["hostname"] = socket.gethostname()
from course_lib.data import load_faithful
out["faithful"] = load_faithful().shape[0]
print(json.dumps(out))
"""
        r = py(code, rundir, limits(output_bytes=1 << 20))
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert r.isolation == "namespaces", out
        assert out["read"] == [] and out["imported"] == [] and out["net"] != "connected"
        assert not any("course-sentinel-marker" in c for c in out["procs"]) and len(out["procs"]) <= 3
        assert out["tmp"] == [] and out["hostname"] == "sandbox" and out["faithful"] == 272
    finally:
        sentinel.kill()
        listener.close()
        shm.unlink()


@namespaces
def test_ipc_objects_and_files_do_not_outlive_a_run(rundir):
    make = ("import ctypes, os\nlibc = ctypes.CDLL(None)\n"
            "assert libc.shmget(0x5eed, 4096, 0o1666) >= 0\nassert libc.msgget(0x5eed, 0o1666) >= 0\n"
            "open('/tmp/left-behind', 'w').write('x'); open('/dev/shm/left', 'w').write('x')")
    assert py(make, rundir).returncode == 0
    look = ("import ctypes, os\nlibc = ctypes.CDLL(None)\n"
            "print(libc.shmget(0x5eed, 0, 0), libc.msgget(0x5eed, 0), os.path.exists('/tmp/left-behind'),"
            " os.path.exists('/dev/shm/left'))")
    r = py(look, rundir)
    assert r.stdout.split() == ["-1", "-1", "False", "False"], r.stderr
    assert not Path("/tmp/left-behind").exists()


@namespaces
def test_disk_is_capped_for_the_run_as_a_whole(rundir):
    code = ("n = 0\ntry:\n    for i in range(20000):\n        open(f'f{i}', 'wb').write(b'x' * 65536); n += 1\n"
            "except OSError as e:\n    print(n, e.errno)")
    r = py(code, rundir, limits(disk_bytes=16 << 20))
    n, errno_ = r.stdout.split()
    assert int(n) <= 16 * 16 and int(errno_) == 28  # ENOSPC well before 20,000 files
    assert not any(rundir.iterdir()) or all(p.name.startswith(".") for p in rundir.iterdir())


@namespaces
@as_root
def test_memory_and_processes_are_capped_for_the_run_as_a_whole(rundir):
    code = ("import os, time\npids = []\n"
            "for _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
            "        b = bytearray(300 << 20)\n        for i in range(0, len(b), 4096): b[i] = 1\n"
            "        time.sleep(2); os._exit(0)\n    pids.append(pid)\n"
            "print(sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids))")
    r = py(code, rundir, limits(memory_bytes=700 << 20))
    assert r.cgroup in ("v1", "v2"), "no cgroup on a host that has them"
    codes = json.loads(r.stdout) if r.returncode == 0 else None
    assert codes is None or -signal.SIGKILL in codes  # the run as a whole could not hold 1.2 GB
    fork = ("import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time; time.sleep(30)\n"
            "        n += 1\nexcept OSError:\n    print(n)")
    r = py(fork, rundir, limits(max_processes=20))
    assert r.returncode == 0 and 5 <= int(r.stdout.split()[-1]) < 20
    assert not sandbox._uid_has_processes(r.uid)


@as_root
def test_a_run_takes_no_more_cpu_than_its_threads_from_the_run_beside_it():
    """100 spinners, each in a session of its own (a scheduler group of its own where the host groups by
    session), must not starve another run: the run as a whole has a CPU quota of ``threads`` CPUs."""
    from concurrent.futures import ThreadPoolExecutor
    hog = ("import os, time\nfor _ in range(100):\n    if os.fork() == 0:\n        os.setsid()\n"
           "        end = time.time() + 8\n        while time.time() < end: pass\n        os._exit(0)\n"
           "time.sleep(8)")
    victim = ("import time\ntime.sleep(1)\nt, c = time.time(), time.process_time()\n"
              "while time.time() - t < 4: pass\nprint(time.process_time() - c)")
    dirs = []
    for name in ("hog", "victim"):
        outer = Path(tempfile.mkdtemp(prefix=f"course-test-{name}-"))
        os.chmod(outer, 0o711)
        (outer / "run").mkdir()
        dirs.append(outer / "run")
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(py, code, d, limits(max_processes=200, wall_seconds=30)) for code, d in
                zip((hog, victim), dirs)]
        hog_run, victim_run = (r.result() for r in runs)
    for d in dirs:
        shutil.rmtree(d.parent, ignore_errors=True)
    if hog_run.cgroup is None:
        pytest.skip("this host gives the grader no cgroups")
    assert victim_run.returncode == 0, (victim_run.reason, victim_run.stderr[-500:])
    cpu = float(victim_run.stdout.split()[-1])
    assert cpu >= 1.0, f"the victim got {cpu:.2f} s of CPU in 4 s beside 100 spinners"


@namespaces
def test_a_nested_kernel_cannot_touch_its_supervisor(rundir):
    inner = "import os, signal, time\nfor s in (signal.SIGSTOP, signal.SIGKILL):\n    try: os.kill(-1, s)\n    except OSError: pass\nprint('inner', len([p for p in os.listdir('/proc') if p.isdigit()]))"
    code = f"""
import json, os, subprocess, sys
prefix = json.loads(os.environ["KERNEL_PREFIX"])
os.makedirs("/sandbox/run/outputs", exist_ok=True)
r = subprocess.run([*prefix, sys.executable, "-I", "-c", {inner!r}], capture_output=True, text=True)
print("supervisor alive", r.returncode, r.stdout.strip(), r.stderr.strip()[-300:])
"""
    inputs = rundir.parent / "input"
    (inputs / "hidden").mkdir(parents=True)
    (inputs / "hidden" / "case.npz").write_text("hidden input")
    paths = sandbox.sandbox_paths("namespaces", rundir, inputs)
    prefix = sandbox.kernel_command("namespaces", FAST, paths)
    r = py(code, rundir, env_extra={"KERNEL_PREFIX": json.dumps(prefix)}, inputs=inputs)
    assert r.returncode == 0 and r.stdout.startswith("supervisor alive 0 inner"), (r.stdout, r.stderr)
    probe = ("import os\nprint(os.path.exists('/sandbox/out'), os.path.exists('/sandbox/input'),"
             " os.listdir('/sandbox/input/hidden'))")
    r = py(f"import json, os, subprocess, sys\nprefix = json.loads(os.environ['KERNEL_PREFIX'])\n"
           f"print(subprocess.run([*prefix, sys.executable, '-I', '-c', {probe!r}], capture_output=True, text=True).stdout)",
           rundir, env_extra={"KERNEL_PREFIX": json.dumps(prefix)}, inputs=inputs)
    # the kernel sees neither the supervisor's folder nor the inputs held back from it
    assert r.stdout.split() == ["False", "True", "[]"], (r.stdout, r.stderr)


@as_root
def test_private_user_cannot_read_the_graders_folders(rundir, monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX_ISOLATION", "uid")
    private = Path(tempfile.mkdtemp(prefix="course-test-grader-"))
    os.chmod(private, 0o755)
    (private / "salt").write_text("secret")
    code = f"import os\ntry:\n    open({str(private / 'salt')!r}).read(); print('READ')\nexcept OSError:\n    print('denied', os.getuid())"
    r = py(code, rundir, protect=[private])
    assert r.isolation == "uid" and r.stdout.split() == ["denied", str(r.uid)] and r.uid in sandbox.UID_RANGE
    assert not sandbox._uid_has_processes(r.uid)
    assert os.stat(rundir).st_uid == 0  # handed back to the grader


def test_a_run_never_changes_permissions_of_the_prefix_or_the_project(rundir):
    watched = [Path(sys.prefix), REPO, REPO / ".venv"]
    before = {p: stat.S_IMODE(os.stat(p).st_mode) for p in watched if p.exists()}
    py("print(1)", rundir)
    assert {p: stat.S_IMODE(os.stat(p).st_mode) for p in before} == before


@as_root
def test_protecting_the_prefix_or_the_project_fails_closed():
    for path in (sys.prefix, REPO, "/"):
        with pytest.raises(SandboxError, match="refusing"):
            sandbox.protect_paths([path])


def test_runtime_lacks_the_reference_and_sklearn():
    site = next((sandbox.build_runtime() / "lib").glob("python3*/site-packages"))
    names = {p.name.split("-")[0].lower() for p in site.iterdir()}
    assert "numpy" in names and "papermill" in names
    assert not {"sklearn", "autograder"} & names
    assert not list(site.glob("__editable__*"))
    # of course_lib, only the student view: data sets and seeding, no estimator
    shipped = {p.relative_to(site / "course_lib").parts[0] for p in (site / "course_lib").rglob("*")}
    assert shipped == set(sandbox.STUDENT_VIEW)


@own_runtime
def test_torch_distributions_is_a_stub_in_the_runtime(rundir):
    """torch imports torch.distributions itself, so the runtime keeps a stub in its place: torch, torch.nn
    and torch.optim work, and any name of torch.distributions fails with one line, however it is reached
    (this code also fails the static check; the runtime holds on its own)."""
    code = ("import torch, torch.nn, torch.optim\n"
            "m = torch.nn.Linear(3, 2)\n"
            "torch.optim.Adam(m.parameters(), lr=1e-3)\n"
            "print('torch ok', m(torch.ones(1, 3)).shape[1])\n"
            "imp = vars(__builtins__)['__imp' + 'ort__'] if not isinstance(__builtins__, dict) "
            "else __builtins__['__imp' + 'ort__']\n"
            "for reach in (lambda: imp('torch.distri' + 'butions', fromlist=['Normal']).Normal,\n"
            "              lambda: getattr(torch, 'distri' + 'butions').kl_divergence):\n"
            "    try:\n"
            "        reach()\n"
            "        print('REACHED')\n"
            "    except ImportError as exc:\n"
            "        print('refused:', exc)\n")
    r = py(code, rundir, limits(memory_bytes=2 << 30))
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "torch ok 2" and "REACHED" not in r.stdout, r.stdout
    assert lines[1:] == ["refused: torch.distributions.Normal is not available when the grader runs a notebook: "
                         "write it with the tensor operations the assignment allows",
                         "refused: torch.distributions.kl_divergence is not available when the grader runs a "
                         "notebook: write it with the tensor operations the assignment allows"], lines


@own_runtime
def test_a_run_without_torch_lacks_it_however_it_is_imported(rundir):
    """The NumPy assignments forbid torch suite-wide, and their runs get a runtime without it: a computed
    import (which the static check cannot follow) finds nothing, while NumPy and course_lib's seeding work."""
    code = ("import numpy, course_lib\n"
            "print('seeded', course_lib.seed_everything(3), numpy.random.rand() < 1)\n"
            "imp = vars(__builtins__)['__imp' + 'ort__'] if not isinstance(__builtins__, dict) "
            "else __builtins__['__imp' + 'ort__']\n"
            "for name in ('tor' + 'ch', 'tor' + 'ch.nn'):\n"
            "    try:\n"
            "        imp(name)\n"
            "        print('REACHED', name)\n"
            "    except ImportError as exc:\n"
            "        print('refused:', type(exc).__name__)\n")
    r = py(code, rundir, without=("torch",))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines() == ["seeded 3 True", "refused: ModuleNotFoundError",
                                             "refused: ModuleNotFoundError"], r.stdout
    with_torch = py("import torch; print(torch.ones(2).sum().item())", rundir, limits(memory_bytes=2 << 30))
    assert with_torch.stdout.strip() == "2.0", with_torch.stderr[-2000:]


def test_a_runtime_cannot_leave_out_what_the_runner_needs():
    """What the notebook runner needs, or anything it requires (PyYAML for papermill; a prefix of a package,
    which would take it along), cannot be left out; a suite that forbids one suite-wide is refused at once."""
    with pytest.raises(SandboxError, match="without numpy: take it off the suite-wide forbidden names"):
        sandbox.build_runtime(("torch", "NumPy"))
    assert sandbox.runner_needs(["yaml", "jupyter", "torch", "statistics"]) == ["jupyter", "yaml"]
    from dataclasses import replace

    from autograder.suites import load_suite
    with pytest.raises(ValueError, match="suite hw1_mle: the grader cannot run notebooks without numpy; forbid "
                                         "it per function, not suite-wide"):
        replace(load_suite("hw1_mle"), forbidden=("sklearn", "numpy"))
    # a module of the standard library is no package to leave out (and the released rules do not name it)
    stdlib = replace(load_suite("hw1_mle"), forbidden=("sklearn", "torch", "statistics"))
    assert stdlib.runtime_without() == ("sklearn", "torch") and "statistics and" not in stdlib.rules_markdown()


def test_numpy_assignments_run_without_torch():
    from autograder.suites import load_suite
    assert {name: load_suite(name).runtime_without() for name in ("hw1_mle", "hw2_em", "hw3_linear", "hw4_vae")} \
        == {"hw1_mle": ("sklearn", "torch"), "hw2_em": ("sklearn", "torch"), "hw3_linear": ("sklearn", "torch"),
            "hw4_vae": ("sklearn",)}


def test_building_a_runtime_removes_those_of_deleted_environments(tmp_path, monkeypatch):
    """Each environment (a CI run's checkout, an upgrade) gets runtimes of its own, which hold the only links
    to its files once it is deleted: building a runtime removes those whose site-packages are gone, and keeps
    the others (and any it cannot tell about)."""
    base = tmp_path / "runtimes"
    base.mkdir(mode=0o755)
    monkeypatch.setenv("COURSE_SANDBOX_RUNTIME", str(base))
    fakes = {"py311-" + c * 16: source for c, source in
             (("a", [str(tmp_path / "deleted-env" / "site-packages")]), ("b", [str(tmp_path)]), ("c", None))}
    for name, source in fakes.items():
        (base / name / "bin").mkdir(parents=True)
        (base / name / "bin" / "python3").write_text("")
        if source is not None:
            (base / f"{name}.source").write_text(json.dumps({"site_packages": source}))
    built = sandbox.build_runtime(("torch",))
    assert (built / "bin" / "python3").exists()
    assert json.loads((base / f"{built.name}.source").read_text())["site_packages"]
    assert not (base / ("py311-" + "a" * 16)).exists() and not (base / ("py311-" + "a" * 16 + ".source")).exists()
    assert (base / ("py311-" + "b" * 16)).exists() and (base / ("py311-" + "c" * 16)).exists()
    assert not any("site-packages" in p.read_text() for p in built.rglob("*.source"))
