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

Modules, beside this file (the runner's directory is never on a block's sys.path):
runner_config (settings from the environment), runner_io (frames, pipes), runner_confine
(rlimits, cgroup, Landlock), runner_data (attached files), runner_figures (matplotlib capture),
runner_sql (the SQL tool). This file: the fork server, sessions, fresh mode, the request loop.
"""

import atexit
import base64
import ctypes
import fcntl
import gc
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
import types

# The runner's own modules sit beside it. An interpreter started with -I (fresh mode's SQL
# blocks) does not put the script's directory on sys.path; main() takes it off again for blocks.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner_confine  # noqa: E402
from runner_config import (
    ALLOW_UNCONFINED, DATA_BUDGET, DATA_DIR, MODE, OWN_SCRATCH, PRELOAD, PR_SET_DUMPABLE, SCRATCH)
from runner_confine import (
    cgroup_oom_file, confine, fork_limits, landlock_works, limits, oom_kills, prepare_reads,
    status_mb)
from runner_data import DataCache
from runner_figures import INLINE_BACKEND, InlineBackend, collect_figures, install_inline_backend
from runner_io import Capture, feed, feed_fd, pump, read_frame, write_frame
from runner_sql import sql_main

RUNNER_FILE = os.path.abspath(__file__)

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


def run_child(code, language, names, own_files, timeout, memory_mb, fds):
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
        if runner_confine.LANDLOCK_ABI:
            # The runner made sure at start that this works; a failure here is not the block's.
            # Before the descriptors are closed: the rules name the fork server's.
            confine(own_files)
        # Nothing of the runner's (its reply channel, its control stdin, the descriptors the
        # rules named) stays open here.
        os.closerange(3, 1 << 16)
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
    def __init__(self, memory_mb, cpu_s, own_files):
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
            preexec_fn=limits(memory_mb, cpu_s, own_files),
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

    def exec_fork(self, req, language, names, own_files, out, err):
        """Runs a block in a child forked from the preloaded runner."""
        timeout = float(req.get("timeout_s", 10))
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        oom_before = oom_kills(self.oom_file)
        pid = os.fork()
        if pid == 0:
            run_child(req.get("code", ""), language, names, own_files, timeout,
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

    def exec_fresh(self, req, language, names, own_files, out, err):
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
            preexec_fn=limits(memory_mb, int(timeout) + 1, own_files),
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

    def exec_session(self, req, own_files, out, err):
        name = req["session"]
        timeout = float(req.get("timeout_s", 10))
        session = self.sessions.get(name)
        if session is None:
            # A session is one trajectory's, so one problem's: it reads the files its first
            # block came with (a later block's others are not readable to it).
            session = Session(int(req.get("memory_mb", 512)), int(req.get("session_cpu_s", 600)),
                              own_files)
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
        own_files = [self.data.path(f["sha256"]) for f in files]
        limit = int(req.get("max_output_bytes", 16384))
        out, err = Capture(limit), Capture(limit)
        started = time.monotonic()
        error = None
        session_lost = False
        oom_killed = None
        try:
            if req.get("session"):
                code, timed_out, session_lost = self.exec_session(req, own_files, out, err)
                if session_lost:
                    lost = self.sessions[req["session"]].lost
                    error = "session %r is lost (%s); it is not replayed" % (req["session"], lost)
            elif MODE == "fork":
                code, timed_out, oom_killed = self.exec_fork(req, language, names, own_files,
                                                             out, err)
            else:
                code, timed_out, oom_killed = self.exec_fresh(req, language, names, own_files,
                                                              out, err)
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
    if DATA_DIR:
        os.makedirs(DATA_DIR, exist_ok=True)
    stdin = sys.stdin.buffer
    # Nothing else may write to the reply channel: point fd 1 of the runner elsewhere, before
    # the preload (whose imports may print).
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    replies = os.fdopen(reply_fd, "wb", buffering=0)
    prepare_reads(here)
    if not (runner_confine.LANDLOCK_ABI and landlock_works()):
        runner_confine.LANDLOCK_ABI = 0
        if not ALLOW_UNCONFINED:
            # Blocks would write anywhere the runner may and read every problem's files.
            write_frame(replies, {"id": 0, "ready": False, "refused": (
                "this kernel cannot confine blocks with Landlock (Linux 5.13 or later with "
                "Landlock enabled, and no seccomp filter refusing its system calls): blocks "
                "would write anywhere the runner may and read every problem's attached files. "
                "Run on such a kernel, or start the sandbox unconfined on purpose "
                "(START_SANDBOX_UNCONFINED=1)")})
            return
    loaded = preload() if MODE == "fork" else []
    if MODE == "fork":
        install_inline_backend()
    runner = Runner(cgroup_oom_file())
    write_frame(replies, {"id": 0, "ready": True, "pid": os.getpid(), "mode": MODE,
                          "preloaded": loaded, "rss_mb": status_mb("VmRSS"),
                          "oom_counter": runner.oom_file is not None,
                          "landlock": runner_confine.LANDLOCK_ABI, "data": DATA_DIR is not None})
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
