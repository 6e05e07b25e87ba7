"""Run a command as untrusted code, at the strongest isolation level the host offers.

Isolation levels (``ISOLATION_LEVELS``, weakest first; every result records the one it had)
------------------------------------------------------------------------------------------
``namespaces``
    bubblewrap (``bwrap``) gives the run its own user, mount, PID, IPC, network (loopback only, nothing
    listening) and UTS namespaces. It sees the shared libraries of /usr (every Python installation there
    masked), the sandbox's Python *runtime* read-only, its inputs read-only (``/sandbox/input``), the
    supervisor's output folder (``/sandbox/out``) and a working folder that is a tmpfs of
    ``limits.disk_bytes`` (``/sandbox/run``, also ``/tmp``). No checkout of the course, no other run, no
    host process is visible. A supervisor nests its kernel in PID, IPC and mount namespaces of its own
    (:func:`kernel_command`), so the student's code can neither signal nor read the supervisor.
``uid``
    (root, no namespaces) a throw-away user id per run from ``UID_RANGE``, rlimits and permissions: the
    grader's own folders are made private (``protect``), but world-readable files of the host are readable.
``none``
    (unprivileged, no namespaces) the grader's own user with rlimits: for a student checking their own work.

At every level: a scrubbed environment (``PATH``, ``LANG``, thread caps, ``MPLBACKEND=Agg``, plus what the
caller adds); rlimits (address space, CPU seconds, file size, no core dumps; processes with a private uid);
memory and processes capped for the run as a whole by a cgroup (v2, else v1) where the host has one and the
grader is root; a new session and the parent-death signal, so a run dies with the grader that started it; on
timeout every process of the run is killed; stdout and stderr captured, keeping the first and last
``limits.output_bytes / 2`` bytes each.

The runtime is a hard-linked copy of this interpreter and of its site-packages *without* the course's
reference code (``course_lib``, ``autograder``) and scikit-learn (``BLOCKED_DISTRIBUTIONS``), plus a copy of
the student view of course_lib (``STUDENT_VIEW``: its data sets and seeding, no estimator). Nothing outside
the grader's own folders ever has its permissions changed.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "Limits", "SandboxResult", "SandboxError", "SandboxPaths", "run_sandboxed", "build_runtime",
    "privileged", "protect_paths", "private_dir", "UID_RANGE", "BLOCKED_DISTRIBUTIONS", "STUDENT_UNAVAILABLE",
    "STUBBED_MODULES", "RUNNER_DISTRIBUTIONS", "runner_needs",
    "describe_exit",
    "ISOLATION_LEVELS", "isolation_level", "sandbox_paths", "kernel_command",
]

#: User ids handed to sandboxed runs when the grader is root (none of them may exist in /etc/passwd).
UID_RANGE = range(61000, 61500)

#: Top-level names left out of the sandbox's site-packages (a prefix match on the entry's name): the
#: course's reference and grader, scikit-learn and SciPy (students work in NumPy and PyTorch; what a suite
#: forbids of them cannot be imported at run time, whatever the static check missed), and
#: ``rfc3987_syntax`` (an optional extra of jsonschema that compiles a grammar for 4 s on import, which
#: nbformat would pay in every sandboxed run).
#: The libraries a student might reach for that the sandbox leaves out: {import name: name for people}.
STUDENT_UNAVAILABLE = {"sklearn": "scikit-learn", "scipy": "SciPy"}
BLOCKED_DISTRIBUTIONS = (
    *STUDENT_UNAVAILABLE, "scikit_learn", "course_lib", "autograder", "course_generative_models",
    "__editable__", "__editable___course", "rfc3987_syntax",
)

#: Modules inside a package the sandbox keeps that no graded notebook may use: {module: submodules kept}. The
#: runtime replaces each by ``autograder/runner/unavailable.py`` next to the submodules kept (torch imports
#: ``torch.distributions`` itself, and ``torch.optim`` its ``constraints``; the stub keeps ``import torch``
#: working and fails on any other name taken from it).
STUBBED_MODULES = {"torch.distributions": ("constraints",)}

#: The distributions the notebook runner starts from (the supervisor, the kernel, the harvest cells): no runtime
#: may leave out one of them or anything they require (see :func:`build_runtime`, :func:`runner_needs`).
RUNNER_DISTRIBUTIONS = ("papermill", "ipykernel", "nbformat", "numpy")

_PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: What a graded notebook may import of course_lib: the data sets and seeding, not the estimators. The
#: sandbox's site-packages holds a copy of just these (the notebooks load their data through them).
STUDENT_VIEW = ("__init__.py", "utils.py", "data.py", "datasets")


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (not the sandboxed code failing)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run.

    Parameters
    ----------
    memory_bytes : int
        Memory of the run as a whole (a cgroup, where the host has one) and address space of each process
        (``RLIMIT_AS``); importing torch alone takes about 0.7 GB of address space.
    cpu_seconds : int
        CPU-time limit of each process (``RLIMIT_CPU``).
    max_processes : int
        Processes and threads of the run (a cgroup's ``pids.max``, and ``RLIMIT_NPROC`` of a private uid).
    file_size_bytes : int
        Largest file a process may write (``RLIMIT_FSIZE``); also what the graded functions' outputs may hold
        together once the grader has read them back (inflated).
    wall_seconds : float
        Wall-clock budget of the whole run; past it, every process of the run is killed.
    output_bytes : int
        How much of stdout (and of stderr) is kept: the first and the last half of it.
    threads : int
        Threads for BLAS/OpenMP/torch (``OMP_NUM_THREADS`` ...), and the CPUs the run as a whole may use
        (a cgroup's CPU quota, where the host has the controller): however many processes a run starts,
        it takes no more than that from the runs beside it.
    disk_bytes : int
        Size of the run's working folder (a tmpfs) in a namespace sandbox: every file it writes, together.
    """

    memory_bytes: int = 4 * 2**30
    cpu_seconds: int = 600
    max_processes: int = 256
    file_size_bytes: int = 64 * 2**20
    wall_seconds: float = 600.0
    output_bytes: int = 64 * 2**10
    threads: int = 1
    disk_bytes: int = 512 * 2**20

    def __post_init__(self):
        for name in ("memory_bytes", "cpu_seconds", "max_processes", "file_size_bytes", "output_bytes", "threads",
                     "disk_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")
        if not (isinstance(self.wall_seconds, (int, float)) and self.wall_seconds > 0):
            raise ValueError(f"Limits.wall_seconds must be a positive number, got {self.wall_seconds!r}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SandboxResult:
    """What a sandboxed run did.

    Attributes
    ----------
    returncode : int
        The exit status (negative: killed by that signal).
    stdout, stderr : str
        Captured output, truncated to ``limits.output_bytes`` (the middle is dropped and marked).
    timed_out : bool
        True when the wall-clock budget ran out and the run was killed.
    reason : str or None
        One line saying why the run failed (None when it exited with status 0).
    duration : float
        Wall-clock seconds.
    uid : int
        The user id the command ran as (outside any user namespace).
    isolation : str
        The isolation level the run had (one of ``ISOLATION_LEVELS``).
    cgroup : str or None
        "v1" or "v2" when memory and processes were capped for the run as a whole by a cgroup, else None.
    """

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    reason: str | None
    duration: float
    uid: int = -1
    isolation: str = "none"
    cgroup: str | None = None


# ---------------------------------------------------------------------------------------- small helpers
def privileged() -> bool:
    """True when the grader can drop to a private user (it runs as root)."""
    return os.geteuid() == 0


_SIGNAL_WORDS = {
    signal.SIGSEGV: "a segmentation fault",
    signal.SIGABRT: "an abort",
    signal.SIGBUS: "a bus error",
    signal.SIGFPE: "a floating-point exception",
    signal.SIGILL: "an illegal instruction",
    signal.SIGKILL: "SIGKILL (out of memory, or killed)",
    signal.SIGXCPU: "the CPU-time limit",
    signal.SIGXFSZ: "the file-size limit",
    signal.SIGTERM: "SIGTERM",
}


def describe_exit(returncode: int) -> str:
    """'exit status 3' or 'killed by a segmentation fault (SIGSEGV)'."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        sig = signal.Signals(-returncode)
    except ValueError:
        return f"killed by signal {-returncode}"
    return f"killed by {_SIGNAL_WORDS.get(sig, sig.name)} ({sig.name})"


def private_dir(path) -> Path:
    """Create ``path`` (and parents) readable only by the grader's user (mode 0700); return it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def protect_paths(paths) -> list:
    """Take group/other permissions off each of the grader's own folders (the folder itself, not recursively).

    With a directory mode of 0700 no other user can list it or reach anything below it, whatever the
    modes inside. Only done when running as root (an unprivileged grader shares its uid with the sandbox,
    so permissions cannot separate them). Fails closed: a path that cannot be protected raises SandboxError.
    The interpreter's prefix, the project and the file system's top folders are refused (a grader must
    never change them: with a system Python, the prefix is /usr). Returns the paths that were changed.
    """
    changed = []
    if not privileged():
        return changed
    forbidden = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, _PROJECT_ROOT, "/",
                                              Path.home(), tempfile.gettempdir(), "/usr", "/var", "/etc")}
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        real = p.resolve()
        if real in forbidden or any(real in Path(f).parents for f in (sys.prefix, _PROJECT_ROOT)):
            raise SandboxError(f"refusing to change the permissions of {p}: keep the grader's output and state "
                               f"folders outside the project and the Python installation")
        try:
            st = os.stat(p, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise SandboxError(f"{p} is a symbolic link: give the grader a real folder")
        if st.st_mode & 0o077:
            try:
                os.chmod(p, stat.S_IMODE(st.st_mode) & ~0o077)
            except OSError as exc:
                raise SandboxError(f"could not make {p} private ({exc.strerror}): fix its owner or choose "
                                   f"another folder") from None
            changed.append(p)
    return changed


# ---------------------------------------------------------------------------------------- the runtime
def _runtime_base() -> Path:
    env = os.environ.get("COURSE_SANDBOX_RUNTIME")
    if env:
        return Path(env)
    if privileged():
        return Path("/var/cache/course-sandbox")
    return Path.home() / ".cache" / "course-sandbox"


def _site_packages() -> list:
    """The grader's site-packages folders: this environment's, then any other on ``sys.path`` (a ``.pth`` file
    or ``PYTHONPATH`` may add the folder where the dependencies live)."""
    paths = []
    for key in ("purelib", "platlib"):
        p = Path(sysconfig.get_paths()[key])
        if p.is_dir() and p not in paths:
            paths.append(p)
    for entry in sys.path:
        p = Path(entry) if entry else None
        if p is not None and p.name in ("site-packages", "dist-packages") and p.is_dir() and p not in paths:
            paths.append(p)
    return paths


def _matches(name: str, package: str) -> bool:
    """Whether the site-packages entry (or import name) ``name`` belongs to ``package`` (both lower case)."""
    return (name == package or name.startswith(package + "-") or name.startswith(package + ".")
            or name.startswith(package + "_") or (package.startswith("__") and name.startswith(package)))


def _blocked(name: str, without: tuple[str, ...] = ()) -> bool:
    low = name.lower()
    return any(_matches(low, b) for b in (*BLOCKED_DISTRIBUTIONS, *without))


@functools.lru_cache(maxsize=1)
def _runner_names() -> frozenset:
    """The import names (lower case) of ``RUNNER_DISTRIBUTIONS`` and of every distribution they require."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    names, seen, todo = set(), set(), list(RUNNER_DISTRIBUTIONS)
    while todo:
        dist_name = canonicalize_name(todo.pop())
        if dist_name in seen:
            continue
        seen.add(dist_name)
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        names.add(dist_name.replace("-", "_"))
        for f in dist.files or ():
            top = f.parts[0] if f.parts else ""
            if top and not top.endswith((".dist-info", ".egg-info", ".data")) and top not in ("..", "__pycache__"):
                names.add(top.removesuffix(".py").lower())
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return frozenset(names)


def runner_needs(packages) -> list[str]:
    """Those of ``packages`` that the notebook runner cannot do without (one of them, or what it requires,
    would be left out of a runtime built without them), sorted."""
    return sorted({str(p).lower() for p in packages if any(_matches(n, str(p).lower()) for n in _runner_names())})


def _without(packages) -> tuple[str, ...]:
    """The packages a runtime leaves out besides ``BLOCKED_DISTRIBUTIONS``, as a sorted tuple of lower-case
    names (those ``BLOCKED_DISTRIBUTIONS`` already covers dropped, so the same runtime serves both); SandboxError
    for one the notebook runner needs."""
    names = {str(p).lower() for p in packages}
    needed = runner_needs(names)
    if needed:
        raise SandboxError(f"the sandbox cannot run notebooks without {', '.join(needed)}: take "
                           f"{'it' if len(needed) == 1 else 'them'} off the suite-wide forbidden names")
    return tuple(sorted(p for p in names if not _blocked(p)))


def _runtime_key(without: tuple[str, ...] = ()) -> str:
    h = hashlib.sha256()
    h.update(sys.version.encode())
    h.update(str(Path(sys.base_prefix).resolve()).encode())
    h.update(repr((BLOCKED_DISTRIBUTIONS, without, sorted(STUBBED_MODULES.items()), _RUNTIME_LAYOUT)).encode())
    h.update(_stub_source())
    for path in _student_view_files():
        h.update(path.read_bytes())
    for sp in _site_packages():
        h.update(str(sp).encode())
        for entry in sorted(os.listdir(sp)):
            h.update(entry.encode())
            if entry.endswith(".dist-info"):
                with contextlib.suppress(OSError):
                    h.update(str(os.stat(sp / entry).st_mtime_ns).encode())
    return h.hexdigest()[:16]


def _student_view_files() -> list[Path]:
    src = _PROJECT_ROOT / "course_lib"
    files = []
    for name in STUDENT_VIEW:
        p = src / name
        files.extend(sorted(q for q in p.rglob("*") if q.is_file() and "__pycache__" not in q.parts)
                     if p.is_dir() else [p])
    return files


def _stub_source() -> bytes:
    from importlib.resources import files
    return files("autograder.runner").joinpath("unavailable.py").read_bytes()


def _install_stubs(site: Path) -> None:
    """Replace each of ``STUBBED_MODULES`` in the sandbox's site-packages by the one-line-error stub, keeping
    the submodules listed with it."""
    for module, kept in STUBBED_MODULES.items():
        package = site.joinpath(*module.split("."))
        if not package.is_dir():                     # the package around it is not installed
            continue
        for entry in list(package.iterdir()):     # unlinked, never written: the files are hard links
            if entry.suffix == ".py" and entry.stem in kept:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        (package / "__init__.py").write_bytes(_stub_source())
        os.chmod(package / "__init__.py", 0o644)


def _install_student_view(site: Path) -> None:
    """Copy the student view of course_lib (``STUDENT_VIEW``) into the sandbox's site-packages."""
    src = _PROJECT_ROOT / "course_lib"
    for path in _student_view_files():
        target = site / "course_lib" / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        os.chmod(target, 0o644)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_tree(src: Path, dst: Path, skip=lambda name: False) -> None:
    """Hard-link (else copy) the tree ``src`` into ``dst``, keeping symlinks that stay inside it."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(src):
        if skip(entry.name):
            continue
        target = dst / entry.name
        if entry.is_symlink():
            link = os.readlink(entry.path)
            if not os.path.isabs(link):
                os.symlink(link, target)
            else:
                real = os.path.realpath(entry.path)
                if os.path.isdir(real):
                    _copy_tree(Path(real), target)
                elif os.path.exists(real):
                    _link_or_copy(real, target)
        elif entry.is_dir():
            _copy_tree(Path(entry.path), target)
        elif entry.is_file():
            _link_or_copy(entry.path, target)


_STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3"}
_RUNTIME_LAYOUT = 3  # bump when the runtime's layout changes


#: Beside each runtime ``<name>``, ``<name>.source`` names the site-packages it was built from.
_SOURCE_SUFFIX = ".source"
_RUNTIME_NAME = re.compile(r"py\d+-[0-9a-f]{16}")


def _prune_stale_runtimes(base: Path) -> None:
    """Remove the runtimes in ``base`` built from site-packages that no longer exist (an environment deleted,
    such as a CI run's checkout): no grader can use them again, and each holds the only links to hundreds of
    megabytes. A runtime without a ``.source`` file, or whose source is unreadable, is kept."""
    for marker in base.glob(f"*{_SOURCE_SUFFIX}"):
        runtime = base / marker.name[: -len(_SOURCE_SUFFIX)]
        if not _RUNTIME_NAME.fullmatch(runtime.name):
            continue
        try:
            sources = json.loads(marker.read_text())["site_packages"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(sources, list) and sources and not any(os.path.isdir(str(p)) for p in sources):
            shutil.rmtree(runtime, ignore_errors=True)
            if not runtime.exists():
                marker.unlink(missing_ok=True)


def build_runtime(without=()) -> Path:
    """The sandbox's Python prefix (built once per interpreter + installed packages + ``without``, then
    reused).

    It holds this interpreter (``bin/python3``), its shared library and standard library, and the
    site-packages of the grader's environment minus ``BLOCKED_DISTRIBUTIONS`` and the packages named in
    ``without`` (a suite's suite-wide forbidden packages: ``torch`` for the NumPy assignments), hard-linked
    when they sit on the same file system (a copy otherwise). Everything in it is readable by any user;
    nothing in it refers back to the project. Building one removes those built from site-packages that no
    longer exist (:func:`_prune_stale_runtimes`).
    """
    without = _without(without)
    base = _runtime_base()
    final = base / f"py{sys.version_info[0]}{sys.version_info[1]}-{_runtime_key(without)}"
    python = final / "bin" / "python3"
    if python.exists():
        return final
    base.mkdir(parents=True, exist_ok=True)
    st = os.lstat(base)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or (st.st_mode & 0o022):
        raise SandboxError(f"{base} must be a directory owned by uid {os.geteuid()} and not writable by others; "
                           f"remove it or set COURSE_SANDBOX_RUNTIME")
    os.chmod(base, 0o755)
    _prune_stale_runtimes(base)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
    try:
        # what it was built from, beside it (not in it: the sandbox sees no path of the host)
        source_file = base / f"{final.name}{_SOURCE_SUFFIX}"
        source_file.write_text(json.dumps({"site_packages": [str(sp) for sp in _site_packages()]}))
        os.chmod(tmp, 0o755)
        ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        base_prefix = Path(sys.base_prefix).resolve()
        (tmp / "bin").mkdir()
        exe = Path(sys.executable).resolve()
        _link_or_copy(str(exe), str(tmp / "bin" / ver))
        os.symlink(ver, tmp / "bin" / "python3")
        os.symlink(ver, tmp / "bin" / "python")
        libdir = base_prefix / "lib"
        (tmp / "lib").mkdir()
        for entry in os.scandir(libdir):
            if entry.name.startswith("libpython") and ".so" in entry.name:
                _link_or_copy(os.path.realpath(entry.path), str(tmp / "lib" / entry.name))
        stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
        _copy_tree(stdlib, tmp / "lib" / ver, skip=lambda n: n in _STDLIB_SKIP)
        site = tmp / "lib" / ver / "site-packages"
        site.mkdir()
        for sp in _site_packages():
            _copy_tree(sp, site, skip=lambda name: _blocked(name, without))
        _install_student_view(site)
        _install_stubs(site)
        for dirpath, dirnames, _ in os.walk(tmp):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
        try:
            os.rename(tmp, final)
        except OSError as exc:  # another grader built it first
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# ---------------------------------------------------------------------------------------- private users
def _lock_dir() -> Path:
    d = Path("/run/course-sandbox") if os.path.isdir("/run") else _runtime_base() / "locks"
    d.mkdir(parents=True, exist_ok=True)
    st = os.lstat(d)
    if st.st_uid != 0 or not stat.S_ISDIR(st.st_mode):
        raise SandboxError(f"{d} must be a directory owned by root")
    os.chmod(d, 0o700)
    return d


def _uid_in_use(uid: int) -> bool:
    import pwd
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


@contextlib.contextmanager
def _private_uid():
    """Reserve a uid from UID_RANGE for the duration of a run (flock on a root-only lock file)."""
    lock_dir = _lock_dir()
    uids = list(UID_RANGE)
    start = random.randrange(len(uids))
    for uid in uids[start:] + uids[:start]:
        if _uid_in_use(uid):
            continue
        fd = os.open(lock_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            _kill_uid(uid)  # leftovers of a grader that was killed mid-run
            yield uid
        finally:
            _kill_uid(uid)
            _remove_stray_files(uid)
            os.close(fd)
        return
    raise SandboxError(f"no free sandbox uid in {UID_RANGE.start}..{UID_RANGE.stop - 1}")


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` (a forked helper becomes that uid and calls ``kill(-1)``)."""
    for _ in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            except BaseException:
                pass
            os._exit(0)
        os.waitpid(pid, 0)
        if not _uid_has_processes(uid):
            return
        time.sleep(0.02)


def _uid_has_processes(uid: int) -> bool:
    """True while a live (not zombie) process of ``uid`` exists."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry.path).st_uid == uid:
                    with open(f"{entry.path}/stat", "rb") as fh:
                        state = fh.read().rsplit(b")", 1)[-1].split()[0]
                    if state not in (b"Z", b"X"):
                        return True
    return False


def _remove_stray_files(uid: int) -> None:
    """Remove what the run's user left in the shared temporary folders."""
    for shared in ("/tmp", "/var/tmp", "/dev/shm"):
        with contextlib.suppress(OSError):
            for entry in os.scandir(shared):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_uid != uid:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    """chown a tree without following links (the sandbox may have removed or replaced parts of it)."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            os.unlink(path)
            return
        os.chown(path, uid, gid, follow_symlinks=False)
    except FileNotFoundError:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def _check_reachable(path: Path, uid: int) -> None:
    """Raise SandboxError unless every directory above ``path`` lets other users through."""
    p = Path(path).resolve()
    for parent in [*reversed(p.parents)]:
        mode = os.stat(parent).st_mode
        if not mode & stat.S_IXOTH:
            raise SandboxError(f"the sandbox user cannot reach {p}: {parent} has mode "
                               f"{stat.S_IMODE(mode):04o}; use a working directory under {tempfile.gettempdir()}")


# ---------------------------------------------------------------------------------------- isolation
#: Isolation levels, weakest first. "namespaces": bubblewrap gives the run its own mount, PID, IPC, network
#: and UTS namespaces; "uid": a private user id, rlimits and file permissions (the grader runs as root but the
#: host has no namespaces); "none": the grader's own user with rlimits (an unprivileged grader without
#: namespaces: fine for a student checking their own work, not for hidden checks).
ISOLATION_LEVELS = ("none", "uid", "namespaces")

#: Where things sit inside a namespace sandbox.
SANDBOX_ROOT = "/sandbox"


@dataclass(frozen=True)
class SandboxPaths:
    """The folders of one run as the sandboxed process sees them.

    ``input``: read-only (what the run reads: the notebook, its case inputs); ``out``: the supervisor's
    folder, the host folder the grader reads afterwards; ``run``: the working folder (``HOME``), a size-capped
    tmpfs in a namespace sandbox. Without namespaces ``out`` and ``run`` are the same host folder.
    """

    input: str
    out: str
    run: str


def _bwrap() -> str | None:
    path = os.environ.get("COURSE_BWRAP") or shutil.which("bwrap")
    return path if path and os.access(path, os.X_OK) else None


_LEVEL: dict = {}


def isolation_level() -> str:
    """The strongest isolation this host offers: "namespaces", "uid" or "none" (see ISOLATION_LEVELS).

    "namespaces" needs bubblewrap (``bwrap``) and a kernel that lets it create namespaces, checked once per
    process by running ``bwrap`` for real. ``COURSE_SANDBOX_ISOLATION`` caps the level (tests use it to try
    the fallbacks); it can only lower the level, never claim one the host lacks.
    """
    key = (os.geteuid(), _bwrap())
    if key not in _LEVEL:
        level = "uid" if privileged() else "none"
        if key[1] is not None:
            probe = [key[1], "--unshare-all", "--die-with-parent", *_system_binds(), "--proc", "/proc",
                     "--dev", "/dev", "--", "/bin/true"]
            try:
                ok = subprocess.run(probe, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, timeout=20,
                                    preexec_fn=_drop_to(UID_RANGE.stop - 1) if privileged() else None).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
            if ok:
                level = "namespaces"
        _LEVEL[key] = level
    level = _LEVEL[key]
    cap = os.environ.get("COURSE_SANDBOX_ISOLATION")
    if cap:
        if cap not in ISOLATION_LEVELS:
            raise SandboxError(f"COURSE_SANDBOX_ISOLATION={cap!r}: use one of {', '.join(ISOLATION_LEVELS)}")
        if ISOLATION_LEVELS.index(cap) < ISOLATION_LEVELS.index(level):
            level = cap
    if level == "uid" and not privileged():
        level = "none"
    return level


def sandbox_paths(level: str, workdir, inputs=None) -> SandboxPaths:
    """Where ``inputs`` (read-only), ``workdir`` (the supervisor's folder) and the working folder appear."""
    if level == "namespaces":
        return SandboxPaths(f"{SANDBOX_ROOT}/input", f"{SANDBOX_ROOT}/out", f"{SANDBOX_ROOT}/run")
    workdir = str(Path(workdir).absolute())
    return SandboxPaths(str(Path(inputs).absolute()) if inputs else workdir, workdir, workdir)


def _system_binds() -> list:
    """bwrap arguments giving read-only shared libraries and programs, and nothing of Python's own.

    /usr is bound read-only with every Python installation in it masked (``/usr/local``, ``/usr/lib/python*``:
    another environment's scikit-learn or a copy of the course must not be importable); /lib, /bin ... follow
    the host (symlinks into /usr, or read-only binds). /etc gives only the dynamic linker's cache.
    """
    args = ["--ro-bind", "/usr", "/usr"]
    for pattern in ("/usr/local", "/usr/lib/python*", "/usr/lib64/python*", "/usr/share/python*",
                    "/usr/lib/*/python*"):
        for hit in sorted(Path("/").glob(pattern.lstrip("/"))):
            if hit.is_dir() and not hit.is_symlink():
                args += ["--tmpfs", str(hit)]
    for top in ("/lib", "/lib32", "/lib64", "/bin", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    return args


def _namespace_args(runtime: Path | None, limits: "Limits", paths: SandboxPaths, *, inputs=None, out=None,
                    run=None, kernel: bool = False) -> list:
    """The bwrap options of a run (``kernel=False``: the supervisor) or of its kernel nested inside it.

    The supervisor gets every namespace (``--unshare-all``: user, mount, PID, IPC, network with loopback only,
    UTS, cgroup), the runtime and its inputs read-only, its output folder, and a working folder that is a
    tmpfs of ``limits.disk_bytes``. The kernel runs inside the supervisor's sandbox in PID, IPC and mount
    namespaces of its own (it keeps the supervisor's loopback to talk to it): it can see, signal and read
    neither the supervisor nor its output folder.
    """
    # a nested kernel's parent is the namespace's init: without JPY_PARENT_PID, ipykernel does not take that
    # for its parent having exited (it dies with its supervisor through --die-with-parent instead)
    args = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unsetenv", "JPY_PARENT_PID"] if kernel \
        else ["--unshare-all"]
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox", *_system_binds()]
    if runtime is not None:
        args += ["--ro-bind", str(runtime), str(runtime)]
    # bubblewrap's /dev/shm is an unbounded tmpfs: give it a small cap of its own
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(max(1 << 20, limits.disk_bytes // 8)),
             "--tmpfs", "/dev/shm", "--dir", SANDBOX_ROOT]
    if kernel:  # re-bind what the supervisor sees, minus its output folder and the inputs it holds back
        args += ["--ro-bind", paths.input, paths.input, "--tmpfs", f"{paths.input}/hidden",
                 "--bind", paths.run, paths.run]
    else:
        if inputs is not None:
            args += ["--ro-bind", str(inputs), paths.input]
        args += ["--bind", str(out), paths.out, "--size", str(limits.disk_bytes), "--tmpfs", paths.run]
        for sub in _HOME_DIRS:
            args += ["--dir", f"{paths.run}/{sub}"]
    args += ["--symlink", f"{paths.run}/tmp", "/tmp", "--symlink", f"{paths.run}/tmp", "/var/tmp",
             "--chdir", paths.run]
    return args


def kernel_command(level: str, limits: "Limits", paths: SandboxPaths, without=()) -> list:
    """The prefix a supervisor puts before its kernel's command line (empty without namespaces); ``without``
    as for :func:`build_runtime`."""
    if level != "namespaces":
        return []
    runtime = build_runtime(without)
    return [_bwrap() or "bwrap", *_namespace_args(runtime, limits, paths, kernel=True), "--"]


# ---------------------------------------------------------------------------------------- cgroups
#: The period of a cgroup's CPU quota, in microseconds.
_CPU_PERIOD_US = 100_000


class _Cgroup:
    """Memory, process and CPU caps for a run as a whole: a cgroup of its own (v2, else v1), where the host
    has a writable cgroup file system with the memory and pids controllers (the CPU quota, ``threads``
    CPUs, where it also has the cpu controller). ``kind`` is "v2", "v1" or None (no caps); ``cpu`` says
    whether the CPU quota is set."""

    def __init__(self, limits: "Limits"):
        self.dirs, self.kind, self.cpu = [], None, False
        name = f"course-sandbox-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            self._create_v2(name, limits) or self._create_v1(name, limits)
        except OSError:
            self.close()
            self.dirs, self.kind = [], None

    @staticmethod
    def _own(controller: str) -> str | None:
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if (controller == "" and ctrls == "") or controller in ctrls.split(","):
                    return path
        return None

    @staticmethod
    def _mounts(fstype: str) -> list:
        out = []
        with open("/proc/self/mounts") as fh:
            for line in fh:
                dev, mnt, typ, opts, *_ = line.split()
                if typ == fstype:
                    out.append((mnt, opts.split(",")))
        return out

    def _create_v2(self, name, limits) -> bool:
        own = self._own("")
        for mnt, _ in self._mounts("cgroup2"):
            parent = Path(mnt) / (own or "/").lstrip("/")
            try:
                ctrls = (parent / "cgroup.subtree_control").read_text().split()
            except OSError:
                continue
            if not {"memory", "pids"} <= set(ctrls):
                continue
            d = parent / name
            d.mkdir()
            self.dirs.append(d)
            (d / "memory.max").write_text(str(limits.memory_bytes))
            with contextlib.suppress(OSError):
                (d / "memory.swap.max").write_text("0")
            (d / "pids.max").write_text(str(limits.max_processes))
            if "cpu" in ctrls:
                with contextlib.suppress(OSError):
                    (d / "cpu.max").write_text(f"{limits.threads * _CPU_PERIOD_US} {_CPU_PERIOD_US}")
                    self.cpu = True
            self.kind = "v2"
            return True
        return False

    def _create_v1(self, name, limits) -> bool:
        found = {}
        for mnt, opts in self._mounts("cgroup"):
            for ctrl in ("memory", "pids", "cpu"):
                if ctrl in opts and ctrl not in found:
                    own = self._own(ctrl) or "/"
                    found[ctrl] = Path(mnt) / own.lstrip("/")
        if not {"memory", "pids"} <= set(found):
            return False
        for ctrl in ("memory", "pids"):
            d = found[ctrl] / name
            d.mkdir()
            self.dirs.append(d)
            if ctrl == "memory":
                (d / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                with contextlib.suppress(OSError):
                    (d / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes))
            else:
                (d / "pids.max").write_text(str(limits.max_processes))
        self.kind = "v1"
        if "cpu" in found:      # optional: without it the run has no CPU quota, its other caps stay
            d = found["cpu"] / name
            try:
                d.mkdir()
                (d / "cpu.cfs_period_us").write_text(str(_CPU_PERIOD_US))
                (d / "cpu.cfs_quota_us").write_text(str(limits.threads * _CPU_PERIOD_US))
                self.dirs.append(d)
                self.cpu = True
            except OSError:
                with contextlib.suppress(OSError):
                    d.rmdir()
        return True

    def join(self) -> None:
        """Move the calling process into the run's cgroups (called in the child before exec)."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def pids(self) -> list:
        out = []
        for d in self.dirs:
            with contextlib.suppress(OSError):
                out += [int(x) for x in (d / "cgroup.procs").read_text().split()]
        return out

    def kill(self) -> bool:
        """SIGKILL every process in the cgroups once; False when there was none."""
        left = self.pids()
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return bool(left)

    def close(self) -> None:
        """Kill what is left in the cgroups and remove them."""
        for _ in range(200):
            if not self.kill():
                break
            time.sleep(0.01)
        for d in self.dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


# ---------------------------------------------------------------------------------------- running
def _environment(paths: SandboxPaths, limits: Limits, env_extra, runtime: Path | None, tmp: str) -> dict:
    threads = str(limits.threads)
    path = "/usr/bin:/bin"
    home = Path(paths.run)
    env = {
        "PATH": (f"{runtime}/bin:" if runtime else f"{Path(sys.executable).parent}:") + path,
        "HOME": str(home),
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(home / ".local" / "share" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(home / ".local" / "share" / "jupyter" / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(home / ".ipython"),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads,
        "VECLIB_MAXIMUM_THREADS": threads,
        "TORCH_NUM_THREADS": threads,
        "CUDA_VISIBLE_DEVICES": "",
        "COURSE_SANDBOX_INPUT": paths.input,
        "COURSE_SANDBOX_OUT": paths.out,
        "COURSE_SANDBOX_RUN": paths.run,
    }
    if runtime is not None:
        env["LD_LIBRARY_PATH"] = str(runtime / "lib")
    for k, v in (env_extra or {}).items():
        env[str(k)] = str(v)
    return env


_HOME_DIRS = ("tmp", ".config/matplotlib", ".jupyter", ".ipython", ".local/share/jupyter/runtime")


def _drop_to(uid: int):
    def drop():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return drop


def _child_setup(limits: Limits, nproc: int | None, cgroup: _Cgroup | None, uid: int | None):
    def apply():  # runs in the child before exec: cgroups (as root), the parent-death signal, rlimits, the uid
        if cgroup is not None:
            cgroup.join()

        def lim(res, soft, hard=None):
            hard = soft if hard is None else hard
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(res, (soft, hard))
        lim(resource.RLIMIT_AS, limits.memory_bytes)
        lim(resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 2)
        lim(resource.RLIMIT_FSIZE, limits.file_size_bytes)
        lim(resource.RLIMIT_CORE, 0)
        if nproc is not None:
            lim(resource.RLIMIT_NPROC, nproc)
        os.umask(0o077)
        if uid is not None:
            _drop_to(uid)()
        set_parent_death_signal()  # after the user switch, which clears it
    return apply


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux ``prctl``); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(ctypes.c_int(1), ctypes.c_ulong(int(sig)), ctypes.c_ulong(0),  # PR_SET_PDEATHSIG
                          ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0
    except (OSError, AttributeError):
        return False


class _Capture(threading.Thread):
    """Drain a pipe, keeping the first and last ``keep // 2`` bytes."""

    def __init__(self, stream, keep: int):
        super().__init__(daemon=True)
        self.stream, self.keep = stream, max(2, keep)
        self.head, self.tail, self.dropped = bytearray(), bytearray(), 0

    def run(self):
        half = self.keep // 2
        with contextlib.suppress(OSError, ValueError):
            while True:
                chunk = self.stream.read1(65536) if hasattr(self.stream, "read1") else self.stream.read(65536)
                if not chunk:
                    break
                room = half - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail += chunk
                    if len(self.tail) > half:
                        self.dropped += len(self.tail) - half
                        del self.tail[: len(self.tail) - half]

    def text(self) -> str:
        mid = f"\n[... {self.dropped} bytes of output dropped ...]\n" if self.dropped else ""
        return (bytes(self.head).decode("utf-8", "replace") + mid + bytes(self.tail).decode("utf-8", "replace"))


def run_sandboxed(argv, workdir, limits: Limits | None = None, env_extra=None, protect=(), inputs=None,
                  level: str | None = None, python_placeholder: str = "{python}", without=()) -> SandboxResult:
    """Run ``argv`` under ``limits`` at the strongest isolation level the host offers.

    Parameters
    ----------
    argv : list of str
        The command. An item equal to ``"{python}"`` is replaced by the sandbox's interpreter. Paths in it
        must be the ones the run sees (:func:`sandbox_paths`).
    workdir : path
        An existing grader-owned folder the run may write (the supervisor's output folder, ``paths.out``).
        Without namespaces it is also the run's working folder; in a namespace sandbox the working folder is
        a private tmpfs of ``limits.disk_bytes`` that disappears with the run. As root, put it inside a
        root-owned folder of mode 0711 (not directly in /tmp) so the run cannot rename or replace it.
    limits : Limits
    env_extra : dict, optional
        Extra environment variables.
    protect : iterable of paths
        Without namespaces, grader-owned paths to make unreadable to the run's user (the grader's output
        folder, the salt): fails with SandboxError rather than run with them exposed. A namespace sandbox
        sees none of them anyway. The interpreter's prefix and the project are never touched.
    inputs : path, optional
        A folder the run reads but cannot change (``paths.input``).
    level : str, optional
        The isolation level to use (default :func:`isolation_level`); asking for one the host lacks fails.
    without : iterable of str, optional
        Packages the run's interpreter lacks besides ``BLOCKED_DISTRIBUTIONS`` (see :func:`build_runtime`).
        Only a run with the sandbox's own interpreter (as root, or with namespaces) can lack them.

    Returns
    -------
    SandboxResult
        ``isolation`` names the level used and ``cgroup`` the kind of whole-run caps ("v1", "v2" or None).
    """
    limits = limits or Limits()
    workdir = Path(workdir).absolute()
    if not workdir.is_dir() or workdir.is_symlink():
        raise SandboxError(f"working directory {workdir} does not exist")
    available = isolation_level()
    level = level or available
    if level not in ISOLATION_LEVELS:
        raise SandboxError(f"unknown isolation level {level!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    if ISOLATION_LEVELS.index(level) > ISOLATION_LEVELS.index(available):
        raise SandboxError(f"isolation level {level!r} is not available on this host (it offers {available!r})")
    as_root = privileged()
    paths = sandbox_paths(level, workdir, inputs)
    if level != "namespaces":
        for sub in _HOME_DIRS:
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        if as_root:
            protect_paths(protect)
    runtime = build_runtime(without) if (as_root or level == "namespaces") else None
    python = str(runtime / "bin" / "python3") if runtime else sys.executable
    argv = [python if a == python_placeholder else str(a) for a in argv]
    env = _environment(paths, limits, env_extra, runtime, "/tmp" if level == "namespaces" else str(workdir / "tmp"))
    if level == "namespaces":
        argv = [_bwrap(), *_namespace_args(runtime, limits, paths, inputs=inputs, out=workdir), "--", *argv]

    with (_private_uid() if as_root else contextlib.nullcontext(None)) as uid:
        cgroup = _Cgroup(limits) if as_root else None
        try:
            if uid is not None:
                if level != "namespaces":
                    _check_reachable(workdir, uid)
                _chown_tree(workdir, uid, uid)
                if inputs is not None and level != "namespaces":
                    _check_reachable(Path(inputs), uid)
                os.chmod(workdir, 0o700)
            start = time.monotonic()
            try:
                proc = subprocess.Popen(
                    argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
                    preexec_fn=_child_setup(limits, limits.max_processes if uid is not None else None,
                                            cgroup if cgroup and cgroup.kind else None, uid))
            except OSError as exc:
                raise SandboxError(f"could not start {argv[0]}: {exc}") from exc
            out, err = _Capture(proc.stdout, limits.output_bytes), _Capture(proc.stderr, limits.output_bytes)
            out.start()
            err.start()
            timed_out = False
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                if cgroup is not None:
                    cgroup.kill()
                if uid is not None:
                    _kill_uid(uid)
                proc.wait()
            duration = time.monotonic() - start
            for t in (out, err):
                t.join(timeout=2.0)
            for s in (proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    s.close()
        finally:
            if cgroup is not None:
                cgroup.close()
            if uid is not None:  # hand the folder back to the grader before it reads anything in it
                _chown_tree(workdir, 0, 0)
    rc = proc.returncode
    if level == "namespaces" and 128 < rc < 128 + 65:
        rc = 128 - rc  # bwrap reports a command killed by signal N as exit status 128 + N
    if timed_out:
        reason = f"did not finish within the {limits.wall_seconds:g} s budget"
    elif rc == 0:
        reason = None
    elif rc == -signal.SIGXCPU:
        reason = f"used more than {limits.cpu_seconds} s of CPU time"
    else:
        reason = describe_exit(rc)
    return SandboxResult(returncode=rc, stdout=out.text(), stderr=err.text(), timed_out=timed_out,
                         reason=reason, duration=duration, uid=uid if uid is not None else os.getuid(),
                         isolation=level, cgroup=cgroup.kind if cgroup is not None else None)
