"""Run a command as untrusted code: resource limits, a wall-clock budget, a scrubbed environment, and,
when the grader runs as root, a throw-away unprivileged user.

What a sandboxed process gets
-----------------------------
* its own working directory (the caller fills it with only what the run needs); ``HOME``, ``TMPDIR`` and the
  Jupyter/IPython/matplotlib folders point inside it;
* a scrubbed environment: ``PATH``, ``LANG``, thread caps (``OMP_NUM_THREADS`` ... = ``limits.threads``),
  ``MPLBACKEND=Agg``, plus what the caller adds;
* rlimits: address space, CPU seconds, processes, file size, no core dumps;
* a new session: on timeout the whole process group is killed (and, with a private user, every process
  of that user, so nothing escapes by ``setsid``);
* stdout and stderr captured, keeping the first and last ``limits.output_bytes / 2`` bytes each.

When the grader runs as root, each run gets a user id of its own from ``UID_RANGE`` (a lock file per uid
keeps parallel graders apart, so ``RLIMIT_NPROC`` counts only that run's processes) and runs a private
Python *runtime*: a hard-linked copy of this interpreter and of its site-packages *without* the course's
reference code (``course_lib``, ``autograder``) and scikit-learn (``BLOCKED_DISTRIBUTIONS``), plus a copy of the
student view of course_lib (``STUDENT_VIEW``: its data sets and seeding, no estimator). The project
itself (``protect`` paths: its tests, hidden suites, the grading salt, other students' results) is made
unreadable to other users, so student code can neither import nor read the reference.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import random
import resource
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
    "Limits", "SandboxResult", "SandboxError", "run_sandboxed", "sandbox_python", "build_runtime",
    "privileged", "protect_paths", "private_dir", "UID_RANGE", "BLOCKED_DISTRIBUTIONS", "describe_exit",
]

#: User ids handed to sandboxed runs when the grader is root (none of them may exist in /etc/passwd).
UID_RANGE = range(61000, 61500)

#: Top-level names left out of the sandbox's site-packages (a prefix match on the entry's name): the
#: course's reference and grader, scikit-learn, and ``rfc3987_syntax`` (an optional extra of jsonschema
#: that compiles a grammar for 4 s on import, which nbformat would pay in every sandboxed run).
BLOCKED_DISTRIBUTIONS = (
    "sklearn", "scikit_learn", "course_lib", "autograder", "course_generative_models",
    "__editable__", "__editable___course", "rfc3987_syntax",
)

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
        Address-space limit of each process (``RLIMIT_AS``); importing torch alone takes about 0.7 GB.
    cpu_seconds : int
        CPU-time limit of each process (``RLIMIT_CPU``).
    max_processes : int
        Processes and threads of the run's user (``RLIMIT_NPROC``; enforced per run only with a private uid).
    file_size_bytes : int
        Largest file a process may write (``RLIMIT_FSIZE``).
    wall_seconds : float
        Wall-clock budget of the whole run; past it, every process of the run is killed.
    output_bytes : int
        How much of stdout (and of stderr) is kept: the first and the last half of it.
    threads : int
        Threads for BLAS/OpenMP/torch (``OMP_NUM_THREADS`` ...).
    """

    memory_bytes: int = 4 * 2**30
    cpu_seconds: int = 600
    max_processes: int = 256
    file_size_bytes: int = 64 * 2**20
    wall_seconds: float = 600.0
    output_bytes: int = 64 * 2**10
    threads: int = 1

    def __post_init__(self):
        for name in ("memory_bytes", "cpu_seconds", "max_processes", "file_size_bytes", "output_bytes", "threads"):
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
        The user id the command ran as.
    """

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    reason: str | None
    duration: float
    uid: int = -1


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
    """Take group/other permissions off each path (the directory itself, not recursively).

    With a directory mode of 0700 no other user can list it or reach anything below it, whatever the
    modes inside. Only done when running as root (an unprivileged grader shares its uid with the sandbox,
    so permissions cannot separate them). Returns the paths that were changed.
    """
    changed = []
    if not privileged():
        return changed
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue
        if st.st_mode & 0o077:
            os.chmod(p, stat.S_IMODE(st.st_mode) & ~0o077)
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
    paths = []
    for key in ("purelib", "platlib"):
        p = Path(sysconfig.get_paths()[key])
        if p.is_dir() and p not in paths:
            paths.append(p)
    return paths


def _blocked(name: str) -> bool:
    low = name.lower()
    return any(low == b or low.startswith(b + "-") or low.startswith(b + ".") or low.startswith(b + "_")
               or (b.startswith("__") and low.startswith(b)) for b in BLOCKED_DISTRIBUTIONS)


def _runtime_key() -> str:
    h = hashlib.sha256()
    h.update(sys.version.encode())
    h.update(str(Path(sys.base_prefix).resolve()).encode())
    h.update(repr((BLOCKED_DISTRIBUTIONS, _RUNTIME_LAYOUT)).encode())
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
_RUNTIME_LAYOUT = 2  # bump when the runtime's layout changes


def build_runtime() -> Path:
    """The sandbox's Python prefix (built once per interpreter + installed packages, then reused).

    It holds this interpreter (``bin/python3``), its shared library and standard library, and the
    site-packages of the grader's environment minus ``BLOCKED_DISTRIBUTIONS``, hard-linked when they sit
    on the same file system (a copy otherwise). Everything in it is readable by any user; nothing in it
    refers back to the project.
    """
    base = _runtime_base()
    final = base / f"py{sys.version_info[0]}{sys.version_info[1]}-{_runtime_key()}"
    python = final / "bin" / "python3"
    if python.exists():
        return final
    base.mkdir(parents=True, exist_ok=True)
    st = os.lstat(base)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or (st.st_mode & 0o022):
        raise SandboxError(f"{base} must be a directory owned by uid {os.geteuid()} and not writable by others; "
                           f"remove it or set COURSE_SANDBOX_RUNTIME")
    os.chmod(base, 0o755)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
    try:
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
            _copy_tree(sp, site, skip=_blocked)
        _install_student_view(site)
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


def sandbox_python() -> Path:
    """The interpreter sandboxed code runs with (``<runtime>/bin/python3``)."""
    return build_runtime() / "bin" / "python3"


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


# ---------------------------------------------------------------------------------------- running
def _environment(workdir: Path, limits: Limits, env_extra, runtime: Path | None) -> dict:
    threads = str(limits.threads)
    path = "/usr/local/bin:/usr/bin:/bin"
    env = {
        "PATH": (f"{runtime}/bin:" if runtime else f"{Path(sys.executable).parent}:") + path,
        "HOME": str(workdir),
        "TMPDIR": str(workdir / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(workdir / ".config" / "matplotlib"),
        "JUPYTER_CONFIG_DIR": str(workdir / ".jupyter"),
        "JUPYTER_DATA_DIR": str(workdir / ".local" / "share" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(workdir / ".local" / "share" / "jupyter" / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(workdir / ".ipython"),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads,
        "VECLIB_MAXIMUM_THREADS": threads,
        "TORCH_NUM_THREADS": threads,
        "CUDA_VISIBLE_DEVICES": "",
    }
    if runtime is not None:
        env["LD_LIBRARY_PATH"] = str(runtime / "lib")
    for k, v in (env_extra or {}).items():
        env[str(k)] = str(v)
    return env


def _rlimits(limits: Limits, nproc: int | None):
    def apply():  # runs in the child after the uid switch, before exec
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
    return apply


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


def run_sandboxed(argv, workdir, limits: Limits | None = None, env_extra=None, protect=(),
                  python_placeholder: str = "{python}") -> SandboxResult:
    """Run ``argv`` in ``workdir`` under ``limits``, as a private user when the grader is root.

    Parameters
    ----------
    argv : list of str
        The command. An item equal to ``"{python}"`` is replaced by the sandbox's interpreter.
    workdir : path
        An existing directory holding only what the run needs; the command runs in it and may write only
        there (and in the shared temporary folders, which are cleaned after the run). When running as root
        it is handed to the run's user for the run and must sit below world-traversable directories; put it
        inside a root-owned folder of mode 0711 (not directly in /tmp) so the run cannot rename or replace it.
    limits : Limits
    env_extra : dict, optional
        Extra environment variables.
    protect : iterable of paths
        Paths to make unreadable to other users before the run (the project, the grader's output folder,
        the salt file). Only applies when running as root.

    Returns
    -------
    SandboxResult
    """
    limits = limits or Limits()
    workdir = Path(workdir).absolute()
    if not workdir.is_dir() or workdir.is_symlink():
        raise SandboxError(f"working directory {workdir} does not exist")
    for sub in ("tmp", ".config", ".jupyter", ".ipython", ".local/share/jupyter/runtime"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    as_root = privileged()
    if as_root:
        protect_paths([_PROJECT_ROOT, Path(sys.prefix), *protect])
    runtime = build_runtime() if as_root else None
    python = str(runtime / "bin" / "python3") if runtime else sys.executable
    argv = [python if a == python_placeholder else str(a) for a in argv]
    env = _environment(workdir, limits, env_extra, runtime)

    with (_private_uid() if as_root else contextlib.nullcontext(None)) as uid:
        kwargs = {}
        if uid is not None:
            _check_reachable(workdir, uid)
            _chown_tree(workdir, uid, uid)
            os.chmod(workdir, 0o700)
            kwargs = dict(user=uid, group=uid, extra_groups=[])
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
                preexec_fn=_rlimits(limits, limits.max_processes if uid is not None else None), **kwargs)
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
            if uid is not None:
                _kill_uid(uid)
            proc.wait()
        duration = time.monotonic() - start
        for t in (out, err):
            t.join(timeout=2.0)
        for s in (proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                s.close()
        if uid is not None:  # hand the folder back to the grader before it reads anything in it
            _chown_tree(workdir, 0, 0)
    rc = proc.returncode
    if timed_out:
        reason = f"did not finish within the {limits.wall_seconds:g} s budget"
    elif rc == 0:
        reason = None
    elif rc == -signal.SIGXCPU:
        reason = f"used more than {limits.cpu_seconds} s of CPU time"
    else:
        reason = describe_exit(rc)
    return SandboxResult(returncode=rc, stdout=out.text(), stderr=err.text(), timed_out=timed_out,
                         reason=reason, duration=duration, uid=uid if uid is not None else os.getuid())
