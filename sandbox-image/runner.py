#!/usr/bin/env python3
"""start's sandbox runner: executes Python on request, one request at a time.

Protocol (stdin -> stdout), both directions framed as a 4-byte big-endian length followed by that
many bytes of UTF-8 JSON. The runner's stdout carries nothing but frames. User code writes to
pipes of its own, and the runner makes itself non-dumpable so that code running as the same
user cannot open /proc/<runner>/fd/1. No output of user code can be mistaken for a reply,
whatever it prints.

Requests:
  {"id": 7, "op": "exec", "code": "...", "language": "python" | "sql",
   "files": [{"name": "sales.csv", "sha256": "..."}], "session": null | "name",
   "timeout_s": 10, "memory_mb": 512, "max_output_bytes": 16384, "stdin": ""}
  {"id": 8, "op": "put_file", "sha256": "...", "data": "<base64>"}
  {"id": 9, "op": "close", "session": "name"}
  {"id": 10, "op": "ping"}
Reply to exec:
  {"id": 7, "stdout": "...", "stderr": "...", "exit_code": 0 | null, "timed_out": false,
   "memory_exceeded": false, "truncated": false, "duration_ms": 12.3,
   "session_lost": false, "error": null,
   "figures": [{"png": "<base64>", "width": 640, "height": 480}], "figures_dropped": 0}
Reply to put_file:
  {"id": 8, "stored": "<sha256>", "bytes": 1234, "evicted": ["<sha256>", ...]}

Attached files (a problem's data: CSV, Parquet, SQLite) are sent once per runner with put_file,
checked against their sha256 and kept, read-only, in the data directory (START_SANDBOX_DATA,
outside the scratch directory; least recently used files are evicted past START_SANDBOX_DATA_MB).
An exec that names files finds them in its working directory under their names, as symbolic
links into that directory. A block may write only beneath its scratch directory and /dev: the
kernel's Landlock confines it (ABI in the ready frame), so no block can change a cached file
for the blocks after it. Where Landlock is missing, each file is re-hashed before every use
instead, and a changed one is refused.

Languages: "python" runs the code as a script; "sql" runs it against the attached files with
SQLite from the standard library (CSV and Parquet files loaded as tables named after the file,
SQLite files attached read-only under that name), under the same limits, and prints each
statement's rows as a text table. Statements that would reach outside the attached data
(ATTACH, VACUUM [INTO], extensions, writes to the data, pragmas that change anything) are
refused by SQLite's authorizer, and the refusal is the block's error. Scratch tables go in temp.

Figures: in fork mode a block that draws with matplotlib gets its figures captured as PNG (at
plt.show(), and those still open when it ends), at most MAX_FIGURES of at most MAX_FIGURE_BYTES
each; the reply carries them.

Without a session every exec starts from a clean interpreter. By default (START_SANDBOX_MODE=fork)
the runner is a fork server: it imports the heavy modules once (START_SANDBOX_PRELOAD, a comma
list; numpy and sympy by default), warms them up, freezes its heap, and forks a child for every
block. The child is a copy of that state, so a block pays no imports, and nothing a block
defines, imports, patches, opens, starts or changes (globals, modules, files, threads, child
processes, cwd, environment) reaches the next one: it dies with the child. START_SANDBOX_MODE=fresh
starts a new interpreter per block instead (the behaviour before the fork server, kept for the
bench and for images whose code must not share a parent). With a session, the blocks of one
trajectory share one live interpreter (later blocks see earlier variables). A session whose
interpreter dies (time-out, memory kill, crash) is reported lost and is never silently replayed:
every later exec in it answers with session_lost and an error until it is closed.

Output is captured through pipes, never files, so code that fills /tmp still gets its error
message back; only the head and the tail are kept, within max_output_bytes.

Memory: in fork mode a block's memory limit is the cgroup's (the container's, or the cgroup the
process backend made for this runner), which the host sets to the block's limit plus this
runner's own resident size (reported in the ready frame as rss_mb; the preloaded pages are shared
with the child and charged once). No address-space limit: OpenBLAS and numpy reserve address
space far beyond what they use, and an RLIMIT_AS breaks their start-up. A block the kernel kills
for memory is told apart from one killed otherwise by the cgroup's oom_kill counter. Fresh mode
keeps the address-space limit it always had.
"""

import atexit
import base64
import collections
import ctypes
import fcntl
import gc
import hashlib
import io
import json
import os
import resource
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types

PR_SET_DUMPABLE = 4
# Files a run writes may not exceed this (RLIMIT_FSIZE); bounds /tmp per file.
FILE_LIMIT = 16 << 20
SCRATCH = os.environ.get("START_SANDBOX_TMP", tempfile.gettempdir())
# The scratch directory is wiped between runs only when it is ours alone: a directory the host
# gave us, or the container's own /tmp (we are PID 1). Never a shared /tmp of a host.
OWN_SCRATCH = "START_SANDBOX_TMP" in os.environ or os.getpid() == 1
MODE = os.environ.get("START_SANDBOX_MODE", "fork")
DEFAULT_PRELOAD = "numpy,sympy,scipy,mpmath,math,cmath,itertools,functools,fractions,decimal," \
    "collections,statistics,random,re,heapq,bisect,pandas,matplotlib.pyplot,sqlite3,csv"
PRELOAD = [m.strip() for m in os.environ.get("START_SANDBOX_PRELOAD", DEFAULT_PRELOAD).split(",")
           if m.strip()]
# The process backend names the cgroup it made for this runner; a container's is found in /proc.
CGROUP = os.environ.get("START_SANDBOX_CGROUP")
# Set by the process backend where it could make no cgroup: then a forked block gets the
# address-space limit that fresh mode has, the only memory limit left.
RLIMIT_AS = os.environ.get("START_SANDBOX_RLIMIT_AS") == "1"
# Where attached files are kept between blocks: a directory of the runner's own, outside the
# scratch directory (the host names it; None: this runner takes no files).
DATA_DIR = os.environ.get("START_SANDBOX_DATA")
DATA_BUDGET = int(os.environ.get("START_SANDBOX_DATA_MB", "256")) << 20
# Figures a block may bring back, and the largest PNG kept.
MAX_FIGURES = 8
MAX_FIGURE_BYTES = 1 << 20
# Largest figure rendered, in pixels: a block asking for a poster gets it at a lower dpi.
MAX_FIGURE_PIXELS = 4_000_000
FIGURE_DIR = ".start-figures"
RUNNER_FILE = os.path.abspath(__file__)
# Rows of a statement's result printed by the SQL tool; the count of the rest follows.
SQL_ROWS = 50

# Run once in the fork server after the preload, so that the lazy imports and the pattern
# tables that sympy and numpy build on first use are paid once, not by every block. Written to
# share nothing with the bench's workloads; sympy's result cache is cleared afterwards, so a
# block's own results are never served from the warm-up.
WARM_UP = {
    "sympy": r"""
import sympy as sp
a, b = sp.symbols('a b')
sp.simplify(sp.tan(a) * sp.cos(a) + (a**2 - 1) / (a - 1))
sp.trigsimp(sp.sin(2 * a) / sp.cos(a)); sp.factor(a**3 - b**3); sp.expand((a + b)**5)
sp.solve(a**2 - 5 * a + 6, a); sp.integrate(sp.exp(a) * a, a); sp.diff(sp.log(a), a)
sp.Matrix([[1, 2], [3, 4]]).det(); sp.nsimplify(0.5); sp.Rational(3, 4) + 1; sp.isprime(97)
sp.limit(sp.sin(a) / a, a, 0); sp.series(sp.exp(a), a, 0, 4); str(sp.sqrt(8)); sp.latex(a**2)
sp.core.cache.clear_cache()
""",
    "matplotlib.pyplot": r"""
import io
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.plot([0, 1, 2], [2, 0, 1], label="warm"); ax.bar([0, 1], [1, 2]); ax.set_title("w"); ax.legend()
fig.savefig(io.BytesIO(), format="png")
plt.close("all")
""",
    "numpy": r"""
import numpy as np
np.linalg.solve(np.eye(3) * 2.0, np.ones(3)); np.arange(10).sum(); np.sort(np.ones(4))
str(np.array([1.5, 2.0])); np.random.default_rng(0).random(2)
""",
}

# The interpreter that a session keeps alive. Commands arrive on fd 0 framed like the protocol,
# replies go to the fd named by argv[1]; stdout and stderr are pipes the runner keeps reading.
SESSION_MAIN = r'''
import io, json, os, struct, sys, traceback
# Commands come on fd 0; move them off it so that user code reading stdin reads nothing.
ctl_in = os.fdopen(os.dup(0), "rb", buffering=0)
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
ctl_out = os.fdopen(int(sys.argv[1]), "wb", buffering=0)
ns = {"__name__": "__main__"}
def read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = ctl_in.read(n - len(buf))
        if not chunk:
            sys.exit(0)
        buf += chunk
    return buf
cell = 0
while True:
    (n,) = struct.unpack(">I", read_exact(4))
    req = json.loads(read_exact(n))
    cell += 1
    code = 0
    try:
        exec(compile(req["code"], "<cell %d>" % cell, "exec"), ns)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:
        # Skip this harness's own frame: the user sees only their cell.
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    reply = json.dumps({"exit_code": code}).encode()
    ctl_out.write(struct.pack(">I", len(reply)) + reply)
'''


def read_frame(stream):
    head = stream.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack(">I", head)
    body = stream.read(n)
    if len(body) < n:
        return None
    return json.loads(body)


def write_frame(stream, obj):
    body = json.dumps(obj).encode()
    stream.write(struct.pack(">I", len(body)) + body)
    stream.flush()


class Capture:
    """Keeps the head and the tail of a stream within `limit` bytes, counting the rest."""

    def __init__(self, limit):
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data):
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.half:
                del self.tail[: len(self.tail) - self.half]

    def text(self):
        tail = bytes(self.tail[-self.half:]) if self.tail else b""
        kept = len(self.head) + len(tail)
        if kept < self.total:
            marker = "\n...[%d bytes omitted]...\n" % (self.total - kept)
            return (self.head.decode("utf-8", "replace") + marker
                    + tail.decode("utf-8", "replace")), True
        return (bytes(self.head) + tail).decode("utf-8", "replace"), False


def pump(streams, done, deadline):
    """Reads every fd in `streams` (fd -> Capture) until `done()` holds or the deadline
    passes, then drains what is already in the pipes. Returns False on time-out."""
    open_fds = set(streams)
    for fd in open_fds:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    timed_out = False
    while True:
        if done():
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(list(open_fds), [], [], min(remaining, 0.05)) if open_fds \
            else (time.sleep(min(remaining, 0.01)) or ([], [], []))
        for fd in ready:
            if not read_some(fd, streams[fd]):
                open_fds.discard(fd)
    for fd in open_fds:
        while read_some(fd, streams[fd]):
            pass
    return not timed_out


def read_some(fd, capture):
    """One non-blocking read; False at end of stream or when nothing is there."""
    try:
        data = os.read(fd, 1 << 16)
    except BlockingIOError:
        return False
    except OSError:
        return False
    if not data:
        return False
    capture.add(data)
    return True


def limits(memory_mb, cpu_s):
    """preexec_fn: resource limits for a child, applied after fork, before exec."""
    def apply():
        mem = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        if LANDLOCK_ABI:
            confine_writes(writable_paths())
    return apply


def fork_limits(cpu_s, memory_mb):
    """Limits a forked block sets on itself: as fresh mode's, without the address-space one
    (memory is the cgroup's) unless there is no cgroup. Then the block gets `memory_mb` of
    address space beyond what it holds already (the fork server's preloaded modules, over
    500 MiB of mappings with pandas, pyarrow and matplotlib), as a cgroup limit adds the
    runner's own size."""
    if RLIMIT_AS:
        mem = (status_mb("VmSize") + memory_mb) << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def cgroup_oom_file():
    """The file whose `oom_kill` line counts the kernel's memory kills in this runner's cgroup
    (v2 memory.events, v1 memory.oom_control), or None where none can be read."""
    candidates = []
    if CGROUP:
        candidates += [os.path.join(CGROUP, "memory.events"),
                       os.path.join(CGROUP, "memory.oom_control")]
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            candidates += ["/sys/fs/cgroup/memory.events",
                           "/sys/fs/cgroup" + path + "/memory.events"]
        elif "memory" in controllers.split(","):
            candidates += ["/sys/fs/cgroup/memory/memory.oom_control",
                           "/sys/fs/cgroup/memory" + path + "/memory.oom_control"]
    for c in candidates:
        if oom_kills(c) is not None:
            return c
    return None


def oom_kills(path):
    if path is None:
        return None
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def status_mb(key):
    """A size from /proc/self/status (VmRSS, VmSize), in MiB; 0 where /proc cannot say."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) // 1024 + 1
    except (OSError, ValueError, IndexError):
        pass
    return 0


# --- Landlock: a block writes only beneath its scratch directory --------------------------------

# Landlock's file-system rights that change something (linux/landlock.h), by the ABI that added
# them: reads are left alone, every kind of write is confined.
LANDLOCK_WRITES = (
    (1, (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10)
     | (1 << 11) | (1 << 12)),  # write_file, remove_dir/file, make_char/dir/reg/sock/fifo/block/sym
    (2, 1 << 13),  # refer (link and rename across directories)
    (3, 1 << 14),  # truncate
)
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
PR_SET_NO_NEW_PRIVS = 38


def landlock_abi():
    """The kernel's Landlock ABI version; 0 where it has none or a seccomp filter refuses it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                           ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return abi if abi > 0 else 0


LANDLOCK_ABI = landlock_abi()


def confine_writes(paths):
    """From here on, this process and everything it starts may write only beneath `paths`
    (Landlock; irrevocable). Reads are not restricted. Raises OSError where it cannot."""
    if not LANDLOCK_ABI:
        raise OSError("Landlock is not available")
    libc = ctypes.CDLL(None, use_errno=True)
    handled = 0
    for abi, rights in LANDLOCK_WRITES:
        if LANDLOCK_ABI >= abi:
            handled |= rights
    attr = ctypes.create_string_buffer(struct.pack("QQQ", handled, 0, 0))
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(8 if LANDLOCK_ABI < 4 else 24),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for path in paths:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = ctypes.create_string_buffer(struct.pack("=Qi", handled, fd))
                if libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(1), rule,
                                ctypes.c_uint32(0)) != 0:
                    raise OSError(ctypes.get_errno(), "landlock_add_rule %s" % path)
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def landlock_works():
    """Whether a child can confine itself (a seccomp filter may allow the ABI query and
    refuse the rest): tried once at start, in a throwaway child."""
    pid = os.fork()
    if pid == 0:
        try:
            confine_writes(writable_paths())
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


def writable_paths():
    """Where a block may write: its scratch directory, and /dev (null, shm)."""
    return [SCRATCH, "/dev"]


# --- Attached files ----------------------------------------------------------------------------


def safe_name(name):
    """A file name a block may see: no directories, no hidden files, nothing odd."""
    return (isinstance(name, str) and 0 < len(name) <= 128 and not name.startswith(".")
            and all(c.isalnum() or c in "._-" for c in name))


class DataCache:
    """Attached files by sha256, written once per runner (put_file) and read-only to blocks;
    the least recently used are evicted past the budget."""

    def __init__(self, root, budget):
        self.root = root
        self.budget = budget
        self.files = collections.OrderedDict()  # sha256 -> size, least recently used first
        if root:
            os.makedirs(root, exist_ok=True)

    def path(self, sha):
        return os.path.join(self.root, sha)

    def put(self, sha, data):
        """Stores `data` as `sha`; returns the evicted shas. Raises ValueError when it cannot."""
        if not self.root:
            raise ValueError("this runner has no data directory (START_SANDBOX_DATA)")
        if not (len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise ValueError("sha256 %r is not 64 lower-case hex digits" % (sha,))
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            raise ValueError("the file sent as %s has sha256 %s" % (sha, got))
        if len(data) > self.budget:
            raise ValueError("a file of %d bytes is over the runner's data budget of %d bytes"
                             % (len(data), self.budget))
        evicted = []
        if sha in self.files:
            self.files.move_to_end(sha)
            return evicted
        while self.files and sum(self.files.values()) + len(data) > self.budget:
            old, _ = self.files.popitem(last=False)
            try:
                os.chmod(self.path(old), 0o600)
                os.unlink(self.path(old))
            except OSError:
                pass
            evicted.append(old)
        tmp = self.path(".incoming-" + sha)
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o444)
        os.replace(tmp, self.path(sha))
        self.files[sha] = len(data)
        return evicted

    def link(self, files, into):
        """Makes each file of `files` ([{name, sha256}]) appear in `into` under its name. Raises
        ValueError for a file never sent or (without Landlock) changed since."""
        for f in files or []:
            name, sha = f.get("name"), f.get("sha256")
            if not safe_name(name):
                raise ValueError("attached file name %r is not allowed" % (name,))
            if sha not in self.files:
                raise ValueError("attached file %s (%s) was never sent to this runner" % (name, sha))
            self.files.move_to_end(sha)
            src = self.path(sha)
            if not LANDLOCK_ABI:
                with open(src, "rb") as fh:
                    if hashlib.sha256(fh.read()).hexdigest() != sha:
                        raise ValueError("attached file %s changed since it was sent" % name)
            dst = os.path.join(into, name)
            if os.path.lexists(dst):
                os.unlink(dst)
            os.symlink(src, dst)


# --- Figures -----------------------------------------------------------------------------------

INLINE_BACKEND = "start_inline"


class InlineBackend:
    """A matplotlib backend (module://start_inline) that saves every figure as PNG into the
    scratch directory's FIGURE_DIR at plt.show(), as a notebook shows it, and closes it. Made
    on import by a finder, so a block that never draws pays nothing."""

    saved = 0

    def find_spec(self, name, path=None, target=None):  # importlib's MetaPathFinder
        if name != INLINE_BACKEND:
            return None
        import importlib.util
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        from matplotlib.backend_bases import FigureManagerBase
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        module.FigureCanvas = FigureCanvasAgg
        module.FigureManager = FigureManagerBase
        module.show = lambda *args, **kwargs: InlineBackend.flush()

    @staticmethod
    def flush():
        """Saves and closes every open figure."""
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return
        out = os.path.join(SCRATCH, FIGURE_DIR)
        os.makedirs(out, exist_ok=True)
        for num in plt.get_fignums():
            fig = plt.figure(num)
            w, h = fig.get_size_inches()
            dpi = min(fig.dpi, (MAX_FIGURE_PIXELS / max(w * h, 1e-6)) ** 0.5)
            InlineBackend.saved += 1
            fig.savefig(os.path.join(out, "fig-%04d.png" % InlineBackend.saved), format="png",
                        dpi=dpi)
        plt.close("all")


def install_inline_backend():
    """In the fork server, once, after the preload: figures drawn in its children are captured
    (see InlineBackend). The finder and a preloaded pyplot's backend are inherited by every
    child, so a block pays nothing for them; a child that imports pyplot itself finds the
    backend through MPLBACKEND (child_env)."""
    sys.meta_path.insert(0, InlineBackend())
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.switch_backend("module://" + INLINE_BACKEND)
        except Exception:  # noqa: BLE001 - a block that draws will say what is wrong
            pass


def png_size(head):
    """(width, height) of a PNG from its first 24 bytes, or None when it is not one."""
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def collect_figures():
    """The figures a block saved (its FIGURE_DIR, in order): at most MAX_FIGURES regular PNG
    files of at most MAX_FIGURE_BYTES; returns (figures, how many more were left out)."""
    d = os.path.join(SCRATCH, FIGURE_DIR)
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return [], 0
    figures, dropped = [], 0
    for name in names:
        if len(figures) == MAX_FIGURES:
            dropped += 1
            continue
        try:
            # No symlinks, no FIFOs: a block could plant either to hang or fool the runner.
            fd = os.open(os.path.join(d, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            dropped += 1
            continue
        try:
            st = os.fstat(fd)
            data = os.read(fd, MAX_FIGURE_BYTES + 1) if stat.S_ISREG(st.st_mode) else b""
        finally:
            os.close(fd)
        size = png_size(data[:24])
        if size is None or len(data) > MAX_FIGURE_BYTES:
            dropped += 1
            continue
        figures.append({"png": base64.b64encode(data).decode("ascii"),
                        "width": size[0], "height": size[1]})
    return figures, dropped


# --- SQL ---------------------------------------------------------------------------------------

# SQLite's authorizer action codes (sqlite3.h).
(SQL_CREATE_INDEX, SQL_CREATE_TABLE, SQL_CREATE_TEMP_INDEX, SQL_CREATE_TEMP_TABLE,
 SQL_CREATE_TEMP_TRIGGER, SQL_CREATE_TEMP_VIEW, SQL_CREATE_TRIGGER, SQL_CREATE_VIEW, SQL_DELETE,
 SQL_DROP_INDEX, SQL_DROP_TABLE, SQL_DROP_TEMP_INDEX, SQL_DROP_TEMP_TABLE, SQL_DROP_TEMP_TRIGGER,
 SQL_DROP_TEMP_VIEW, SQL_DROP_TRIGGER, SQL_DROP_VIEW, SQL_INSERT, SQL_PRAGMA, SQL_READ, SQL_SELECT,
 SQL_TRANSACTION, SQL_UPDATE, SQL_ATTACH, SQL_DETACH, SQL_ALTER_TABLE, SQL_REINDEX, SQL_ANALYZE,
 SQL_CREATE_VTABLE, SQL_DROP_VTABLE, SQL_FUNCTION, SQL_SAVEPOINT, SQL_RECURSIVE) = range(1, 34)
SQL_ALWAYS = {SQL_SELECT, SQL_READ, SQL_RECURSIVE, SQL_TRANSACTION, SQL_SAVEPOINT,
              SQL_CREATE_TEMP_TABLE, SQL_CREATE_TEMP_VIEW, SQL_CREATE_TEMP_INDEX,
              SQL_DROP_TEMP_TABLE, SQL_DROP_TEMP_VIEW, SQL_DROP_TEMP_INDEX}
SQL_WRITES = {SQL_INSERT: "inserting into", SQL_UPDATE: "updating", SQL_DELETE: "deleting from"}
# Pragmas that only describe: anything else could change the connection or reach a file.
SQL_PRAGMAS = {"table_info", "table_xinfo", "table_list", "index_list", "index_info",
               "index_xinfo", "foreign_key_list", "database_list", "collation_list",
               "function_list", "pragma_list"}
SQL_FUNCTIONS_REFUSED = {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"}
SQL_REFUSED = {
    SQL_ATTACH: "ATTACH (and VACUUM, which attaches its output) would reach outside the "
                "attached data",
    SQL_DETACH: "DETACH would change the attached data",
    SQL_CREATE_VTABLE: "virtual tables can reach outside the attached data",
    SQL_ANALYZE: "ANALYZE writes to the data",
    SQL_REINDEX: "REINDEX writes to the data",
}
SQL_FILE_FORMATS = {"csv": "csv", "parquet": "parquet", "sqlite": "sqlite", "sqlite3": "sqlite",
                    "db": "sqlite"}


def sql_table_name(file_name):
    """The table (or, for a SQLite file, the schema) a file is queried as: its name without
    the extension, every character other than a letter, digit or '_' made '_'."""
    stem = file_name.rsplit(".", 1)[0]
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    return name if name and not name[0].isdigit() else "t_" + name


def sql_quote(ident):
    return '"' + ident.replace('"', '""') + '"'


def sql_split(text):
    """The statements of `text`, split at semicolons outside strings, quoted names and
    comments; empty statements are dropped."""
    out, cur, i, n = [], [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"`[":
            end = "]" if c == "[" else c
            j = i + 1
            while j < n:
                if text[j] == end:
                    if end != "]" and j + 1 < n and text[j + 1] == end:
                        j += 2
                        continue
                    break
                j += 1
            cur.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            cur.append(text[i:j])
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            cur.append(text[i:j])
            i = j
        elif c == ";":
            out.append("".join(cur))
            cur = []
            i += 1
        else:
            cur.append(c)
            i += 1
    out.append("".join(cur))
    # A statement of comments and blanks alone is no statement.
    return [stmt.strip() for stmt in out if sql_meaningful(stmt)]


def sql_meaningful(stmt):
    i, n = 0, len(stmt)
    while i < n:
        if stmt[i].isspace():
            i += 1
        elif stmt.startswith("--", i):
            j = stmt.find("\n", i)
            i = n if j < 0 else j
        elif stmt.startswith("/*", i):
            j = stmt.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            return True
    return False


def sql_infer(values):
    """The column type of CSV values: INTEGER, REAL or TEXT (empty cells are NULL)."""
    kind = "INTEGER"
    for v in values:
        if v == "":
            continue
        if kind == "INTEGER":
            try:
                int(v)
                continue
            except ValueError:
                kind = "REAL"
        if kind == "REAL":
            try:
                float(v)
                continue
            except ValueError:
                return "TEXT"
    return kind


def sql_cell(v, kind):
    if v == "":
        return None
    if kind == "INTEGER":
        return int(v)
    if kind == "REAL":
        return float(v)
    return v


def sql_load_csv(con, table, name):
    import csv
    with open(name, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError("%s is empty: a CSV file needs a header row" % name)
    header, body = rows[0], rows[1:]
    width = len(header)
    body = [r + [""] * (width - len(r)) if len(r) < width else r[:width] for r in body]
    kinds = [sql_infer(r[i] for r in body) for i in range(width)]
    cols = ", ".join("%s %s" % (sql_quote(h or "column%d" % (i + 1)), k)
                     for i, (h, k) in enumerate(zip(header, kinds)))
    con.execute("CREATE TABLE %s (%s)" % (sql_quote(table), cols))
    con.executemany("INSERT INTO %s VALUES (%s)" % (sql_quote(table), ", ".join("?" * width)),
                    ([sql_cell(v, k) for v, k in zip(r, kinds)] for r in body))


def sql_load_parquet(con, table, name):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("%s: reading Parquet needs pyarrow, which this sandbox's Python lacks"
                         % name)
    import datetime
    import decimal
    t = pq.read_table(name)

    def affinity(typ):
        import pyarrow.types as pt
        if pt.is_integer(typ) or pt.is_boolean(typ):
            return "INTEGER"
        if pt.is_floating(typ) or pt.is_decimal(typ):
            return "REAL"
        if pt.is_binary(typ) or pt.is_large_binary(typ):
            return "BLOB"
        return "TEXT"

    def value(v):
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, decimal.Decimal):
            return float(v)
        if isinstance(v, (datetime.date, datetime.datetime, datetime.time)):
            return v.isoformat(sep=" ") if isinstance(v, datetime.datetime) else v.isoformat()
        if isinstance(v, (list, dict)):
            return json.dumps(v, default=str)
        return v

    cols = ", ".join("%s %s" % (sql_quote(f.name), affinity(f.type)) for f in t.schema)
    con.execute("CREATE TABLE %s (%s)" % (sql_quote(table), cols))
    names = t.schema.names
    con.executemany("INSERT INTO %s VALUES (%s)" % (sql_quote(table), ", ".join("?" * len(names))),
                    ([value(r[n]) for n in names] for r in t.to_pylist()))


def sql_format(value):
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return "<%d bytes>" % len(value)
    return str(value)


def sql_table(names, rows, more):
    """A result as a text table: a header, a rule, the rows, then how many rows in all."""
    cells = [[sql_format(v) for v in r] for r in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    line = lambda vals: " | ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    out = [line(names), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    total = len(rows) + more
    if more:
        out.append("... %d more rows (%d rows in all)" % (more, total))
    else:
        out.append("(%d row%s)" % (total, "" if total == 1 else "s"))
    return "\n".join(out)


def sql_main(code, names):
    """Runs SQL against the attached files `names` (in the working directory); prints each
    statement's result. Returns the exit status: 0, or 1 after the first failed statement."""
    import sqlite3
    con = sqlite3.connect(":memory:", uri=True, isolation_level=None)
    con.execute("PRAGMA temp_store = MEMORY")
    attached = 0
    try:
        for name in names:
            fmt = SQL_FILE_FORMATS.get(name.rsplit(".", 1)[-1].lower())
            table = sql_table_name(name)
            if fmt == "csv":
                sql_load_csv(con, table, name)
            elif fmt == "parquet":
                sql_load_parquet(con, table, name)
            elif fmt == "sqlite":
                from urllib.parse import quote
                con.execute("ATTACH DATABASE ? AS %s" % sql_quote(table),
                            ("file:%s?mode=ro&immutable=1" % quote(os.path.realpath(name)),))
                attached += 1
    except (ValueError, OSError, sqlite3.Error, UnicodeDecodeError) as e:
        print("Error: cannot load the attached data: %s" % e, file=sys.stderr)
        return 1
    # Past here no database can be attached whatever the authorizer says (VACUUM INTO too).
    con.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, attached)
    refused = []

    def authorize(action, arg1, arg2, db, _source):
        if action in SQL_ALWAYS:
            return sqlite3.SQLITE_OK
        if action == SQL_FUNCTION:
            if (arg2 or "").lower() in SQL_FUNCTIONS_REFUSED:
                refused.append("%s() is not allowed" % arg2)
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action in SQL_WRITES:
            if db == "temp":
                return sqlite3.SQLITE_OK
            if (arg1 or "").lower() in ("sqlite_master", "sqlite_schema"):
                refused.append("the statement would change the attached data's tables (only "
                               "queries and temp objects are allowed)")
            else:
                refused.append("%s %s: the attached data is read-only (CREATE TEMP TABLE makes "
                               "a scratch table)" % (SQL_WRITES[action], arg1))
            return sqlite3.SQLITE_DENY
        if action == SQL_PRAGMA:
            if (arg1 or "").lower() in SQL_PRAGMAS:
                return sqlite3.SQLITE_OK
            refused.append("PRAGMA %s is not allowed" % arg1)
            return sqlite3.SQLITE_DENY
        refused.append(SQL_REFUSED.get(action, "the statement would change the attached data "
                                               "(only queries and temp objects are allowed)"))
        return sqlite3.SQLITE_DENY

    con.set_authorizer(authorize)
    for i, stmt in enumerate(sql_split(code)):
        del refused[:]
        try:
            cur = con.execute(stmt)
            if cur.description is None:
                rows = []
            else:
                rows = cur.fetchmany(SQL_ROWS)
                more = sum(1 for _ in cur)
        except sqlite3.Error as e:
            why = ("refused: " + refused[0]) if refused else str(e)
            print("Error in statement %d: %s" % (i + 1, why), file=sys.stderr)
            return 1
        if cur.description is not None:
            print(sql_table([d[0] for d in cur.description], rows, more))
        elif cur.rowcount >= 0:
            print("(%d row%s changed)" % (cur.rowcount, "" if cur.rowcount == 1 else "s"))
    sys.stdout.flush()
    return 0


def preload():
    """Imports and warms up the preload list; returns the modules that loaded. A module the
    interpreter lacks (the process backend runs on a host's python) is skipped, not fatal."""
    # One BLAS thread, as every block gets: a fork server must not fork with a thread pool
    # running, and the children get the same settings through child_env anyway.
    for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[key] = "1"
    os.environ["MPLBACKEND"] = "Agg"
    loaded = []
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing or broken module is skipped
            continue
        loaded.append(name)
        warm = WARM_UP.get(name)
        if warm:
            try:
                exec(compile(warm, "<warm-up %s>" % name, "exec"), {"__name__": "__warmup__"})
            except Exception:  # noqa: BLE001 - a warm-up that fails only costs speed
                pass
    for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MPLBACKEND"):
        os.environ.pop(key, None)
    # Objects alive now are never freed by a child: keep the collector off their pages, so
    # children do not copy them on write.
    gc.collect()
    gc.freeze()
    return loaded


def child_env():
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": SCRATCH,
        "TMPDIR": SCRATCH,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONHASHSEED": "0",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()


def memory_verdict(returncode, stderr_text, oom_killed=None):
    """Whether a block ran out of memory: a MemoryError, or a kill by the kernel's OOM killer,
    which the cgroup's counter shows where it can be read (`oom_killed` True or False) and a
    SIGKILL that we did not send suggests where it cannot (None)."""
    if "MemoryError" in stderr_text[-4096:]:
        return True
    if oom_killed is not None:
        return oom_killed
    return returncode == -signal.SIGKILL


def sweep_strays(keep_pgids):
    """As PID 1 (in a container or a PID namespace), kill every process that is not a live
    session's, so background processes meant to outlive a run do not. Never done elsewhere."""
    if os.getpid() != 1:
        return
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == 1:
            continue
        pid = int(entry)
        try:
            pgid = os.getpgid(pid)
        except (ProcessLookupError, PermissionError):
            continue
        if pgid in keep_pgids:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    reap()


def wipe(directory):
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for name in entries:
        path = os.path.join(directory, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def feed(pipe, data):
    """Writes stdin in a thread, so a program that never reads it cannot block the runner."""
    def run():
        try:
            if data:
                pipe.write(data)
        except OSError:
            pass
        finally:
            try:
                pipe.close()
            except OSError:
                pass
    threading.Thread(target=run, daemon=True).start()


def feed_fd(fd, data):
    """`feed` for a raw pipe descriptor: small inputs are written at once (a pipe holds 64 KiB),
    larger ones by a thread, so a program that never reads cannot block the runner."""
    if len(data) <= 32768:
        try:
            if data:
                os.write(fd, data)
        except OSError:
            pass
        os.close(fd)
        return

    def run():
        view = memoryview(data)
        try:
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except OSError:
            pass
        finally:
            os.close(fd)
    threading.Thread(target=run, daemon=True).start()


def exit_status(e):
    """The status an interpreter exits with for SystemExit `e`."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    try:
        print(e.code, file=sys.stderr)
    except Exception:  # noqa: BLE001
        pass
    return 1


def run_child(code, language, names, timeout, memory_mb, fds):
    """In a forked child: becomes the block's own process, runs `code` the way `python3 -I`
    would run it as a script (or, for "sql", against the attached files `names`), and exits.
    Never returns."""
    in_r, out_w, err_w = fds
    status = 1
    try:
        os.setsid()
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        # Nothing of the runner's (its reply channel, its control stdin) stays open here.
        os.closerange(3, 1 << 16)
        try:
            # An exec'd interpreter would be dumpable again, and its own /proc readable to it.
            ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        try:
            # Under memory pressure the kernel kills the block, never the fork server.
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        fork_limits(int(timeout) + 1, memory_mb)
        os.chdir(SCRATCH)
        if LANDLOCK_ABI:
            # The runner made sure at start that this works; a failure here is not the block's.
            confine_writes(writable_paths())
        os.environ.clear()
        os.environ.update(child_env())
        # Figures go to the runner's inline backend, installed in the fork server.
        os.environ["MPLBACKEND"] = "module://" + INLINE_BACKEND
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                     encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
                                      encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
                                      encoding="utf-8", errors="backslashreplace",
                                      line_buffering=True)
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        sys.argv = ["<cell>"]
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            # A fresh interpreter seeds numpy's global generator from the OS; so does a block
            # (`random` reseeds itself after a fork).
            numpy.random.seed()
        import linecache
        linecache.cache["<cell>"] = (len(code), None, code.splitlines(True), "<cell>")
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        try:
            if language == "sql":
                status = sql_main(code, names)
            else:
                exec(compile(code, "<cell>", "exec"), main.__dict__)
                status = 0
        except SystemExit as e:
            status = exit_status(e)
        except BaseException as e:  # noqa: BLE001 - reported as the interpreter would
            # Skip this harness's own frame: the user sees only their cell.
            traceback.print_exception(type(e), e, e.__traceback__.tb_next)
            status = 1
        try:
            # Figures still open when the block ends are shown, as a notebook shows them.
            InlineBackend.flush()
        except BaseException as e:  # noqa: BLE001
            traceback.print_exception(type(e), e, e.__traceback__)
        # What an interpreter does on its way out: wait for non-daemon threads, run atexit.
        try:
            threading._shutdown()
        except BaseException:  # noqa: BLE001
            pass
        try:
            atexit._run_exitfuncs()
        except BaseException:  # noqa: BLE001
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
    finally:
        os._exit(status)


class Session:
    def __init__(self, memory_mb, cpu_s):
        self.lost = None  # why it died, once it has
        r_ctl, w_ctl = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", SESSION_MAIN, str(w_ctl)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(w_ctl,),
            env=child_env(),
            cwd=SCRATCH,
            start_new_session=True,
            preexec_fn=limits(memory_mb, cpu_s),
        )
        os.close(w_ctl)
        self.ctl = r_ctl
        fcntl.fcntl(r_ctl, fcntl.F_SETFL, fcntl.fcntl(r_ctl, fcntl.F_GETFL) | os.O_NONBLOCK)

    def close(self):
        kill_group(self.proc)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        try:
            os.close(self.ctl)
        except OSError:
            pass


class Runner:
    def __init__(self, oom_file=None):
        self.sessions = {}
        self.oom_file = oom_file
        self.data = DataCache(DATA_DIR, DATA_BUDGET)

    def exec_fork(self, req, language, names, out, err):
        """Runs a block in a child forked from the preloaded runner."""
        timeout = float(req.get("timeout_s", 10))
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        oom_before = oom_kills(self.oom_file)
        pid = os.fork()
        if pid == 0:
            run_child(req.get("code", ""), language, names, timeout,
                      int(req.get("memory_mb", 512)), (in_r, out_w, err_w))
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        feed_fd(in_w, (req.get("stdin") or "").encode())
        status = []

        def done():
            if not status:
                p, st = os.waitpid(pid, os.WNOHANG)
                if p == pid:
                    status.append(st)
            return bool(status)

        finished = pump({out_r: out, err_r: err}, done, time.monotonic() + timeout)
        try:
            # The child made itself a session leader: its group holds whatever it started.
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if not status:
            status.append(os.waitpid(pid, 0)[1])
        os.close(out_r)
        os.close(err_r)
        st = status[0]
        code = -os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
        oom_after = oom_kills(self.oom_file)
        oom_killed = None if oom_before is None or oom_after is None else oom_after > oom_before
        return code, not finished, oom_killed

    def exec_fresh(self, req, language, names, out, err):
        timeout = float(req.get("timeout_s", 10))
        memory_mb = int(req.get("memory_mb", 512))
        code_path = os.path.join(SCRATCH, ".start-cell-%d.py" % req["id"])
        with open(code_path, "w", encoding="utf-8") as f:
            f.write(req.get("code", ""))
        argv = [sys.executable, "-I", code_path]
        if language == "sql":
            argv = [sys.executable, "-I", RUNNER_FILE, "--sql", code_path] + names
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
            cwd=SCRATCH,
            start_new_session=True,
            preexec_fn=limits(memory_mb, int(timeout) + 1),
        )
        feed(proc.stdin, (req.get("stdin") or "").encode())
        streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
        finished = pump(streams, lambda: proc.poll() is not None, time.monotonic() + timeout)
        kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
        try:
            os.unlink(code_path)
        except OSError:
            pass
        return proc.returncode, not finished, None

    def exec_session(self, req, out, err):
        name = req["session"]
        timeout = float(req.get("timeout_s", 10))
        session = self.sessions.get(name)
        if session is None:
            session = Session(int(req.get("memory_mb", 512)), int(req.get("session_cpu_s", 600)))
            self.sessions[name] = session
        if session.lost:
            return None, False, True
        cmd = json.dumps({"code": req.get("code", "")}).encode()
        try:
            session.proc.stdin.write(struct.pack(">I", len(cmd)) + cmd)
            session.proc.stdin.flush()
        except OSError:
            session.close()
            session.lost = "its interpreter had exited"
            return None, False, True
        reply = Capture(1 << 20)
        streams = {session.proc.stdout.fileno(): out, session.proc.stderr.fileno(): err,
                   session.ctl: reply}

        def answered():
            data = bytes(reply.head)
            return len(data) >= 4 and len(data) >= 4 + struct.unpack(">I", data[:4])[0]

        def done():
            return answered() or session.proc.poll() is not None

        pump(streams, done, time.monotonic() + timeout)
        if answered():
            data = bytes(reply.head)
            return json.loads(data[4:]).get("exit_code", 1), False, False
        timed_out = session.proc.poll() is None
        session.close()
        session.lost = "timed out" if timed_out else (
            "its interpreter exited with status %s" % session.proc.returncode)
        return session.proc.returncode, timed_out, True

    def handle(self, req):
        op = req.get("op")
        rid = req.get("id")
        if op == "ping":
            return {"id": rid, "pong": True, "pid": os.getpid()}
        if op == "close":
            session = self.sessions.pop(req.get("session"), None)
            if session is not None and not session.lost:
                session.close()
            self.cleanup()
            return {"id": rid, "closed": session is not None}
        if op == "put_file":
            sha = req.get("sha256") or ""
            try:
                data = base64.b64decode(req.get("data") or "", validate=True)
                evicted = self.data.put(sha, data)
            except (ValueError, OSError) as e:
                return {"id": rid, "error": "put_file: %s" % e}
            return {"id": rid, "stored": sha, "bytes": len(data), "evicted": evicted}
        if op != "exec":
            return {"id": rid, "error": "unknown op %r" % (op,)}
        language = req.get("language") or "python"
        if language not in ("python", "sql"):
            return {"id": rid, "error": "unknown language %r" % (language,)}
        if language != "python" and req.get("session"):
            return {"id": rid, "error": "sessions run python only, not %r" % (language,)}
        files = req.get("files") or []
        try:
            self.data.link(files, SCRATCH)
        except (ValueError, OSError) as e:
            self.cleanup()
            return {"id": rid, "error": "attached files: %s" % e}
        names = [f["name"] for f in files]
        limit = int(req.get("max_output_bytes", 16384))
        out, err = Capture(limit), Capture(limit)
        started = time.monotonic()
        error = None
        session_lost = False
        oom_killed = None
        try:
            if req.get("session"):
                code, timed_out, session_lost = self.exec_session(req, out, err)
                if session_lost:
                    lost = self.sessions[req["session"]].lost
                    error = "session %r is lost (%s); it is not replayed" % (req["session"], lost)
            elif MODE == "fork":
                code, timed_out, oom_killed = self.exec_fork(req, language, names, out, err)
            else:
                code, timed_out, oom_killed = self.exec_fresh(req, language, names, out, err)
        except OSError as e:
            code, timed_out, error = None, False, "could not start the interpreter: %s" % e
        duration_ms = (time.monotonic() - started) * 1000.0
        stdout, cut_out = out.text()
        stderr, cut_err = err.text()
        figures, figures_dropped = collect_figures()
        self.cleanup()
        memory = (not timed_out) and code is not None and code != 0 and \
            memory_verdict(code, stderr, oom_killed)
        if timed_out:
            code = None
        elif code is not None and code < 0:
            # killed by a signal: report it the shell's way, 128 + signal number
            code = 128 - code
        return {
            "id": rid,
            "stdout": stdout,
            "stderr": stderr,
            "exit_code": code,
            "timed_out": timed_out,
            "memory_exceeded": memory,
            "truncated": cut_out or cut_err,
            "duration_ms": duration_ms,
            "session_lost": session_lost,
            "error": error,
            "figures": figures,
            "figures_dropped": figures_dropped,
        }

    def cleanup(self):
        keep = {s.proc.pid for s in self.sessions.values() if not s.lost}
        sweep_strays(keep)
        reap()
        if not keep and OWN_SCRATCH:
            # No live session owns files here: give the next run an empty scratch directory,
            # so one run cannot fill /tmp for the next.
            wipe(SCRATCH)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    if os.environ.get("PYTHONHASHSEED") != "0":
        # str hashes (set order, dict-of-set output) must not differ between runs of the same
        # code: fix the seed for the fork server, whose children inherit it.
        os.execve(sys.executable, [sys.executable, "-s", os.path.join(here, "runner.py")],
                  dict(os.environ, PYTHONHASHSEED="0"))
    # Blocks import what a `python3 -I` script would: not the runner's own directory.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    os.makedirs(SCRATCH, exist_ok=True)
    global LANDLOCK_ABI
    if LANDLOCK_ABI and not landlock_works():
        LANDLOCK_ABI = 0
    stdin = sys.stdin.buffer
    # Nothing else may write to the reply channel: point fd 1 of the runner elsewhere, before
    # the preload (whose imports may print).
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    replies = os.fdopen(reply_fd, "wb", buffering=0)
    loaded = preload() if MODE == "fork" else []
    if MODE == "fork":
        install_inline_backend()
    runner = Runner(cgroup_oom_file())
    write_frame(replies, {"id": 0, "ready": True, "pid": os.getpid(), "mode": MODE,
                          "preloaded": loaded, "rss_mb": status_mb("VmRSS"),
                          "oom_counter": runner.oom_file is not None,
                          "landlock": LANDLOCK_ABI, "data": DATA_DIR is not None})
    while True:
        try:
            req = read_frame(stdin)
        except ValueError as e:
            write_frame(replies, {"id": None, "error": "malformed request: %s" % e})
            continue
        if req is None:
            break
        try:
            reply = runner.handle(req)
        except Exception as e:  # the runner must answer, whatever happened
            reply = {"id": req.get("id"), "error": "runner error: %r" % (e,)}
        write_frame(replies, reply)
    for s in list(runner.sessions.values()):
        if not s.lost:
            s.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sql"]:
        # Fresh mode's SQL block: runner.py --sql CODE-FILE NAME..., run as its own interpreter.
        with open(sys.argv[2], encoding="utf-8") as f:
            sys.exit(sql_main(f.read(), sys.argv[3:]))
    main()
