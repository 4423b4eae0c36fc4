#!/usr/bin/env python3
"""start's sandbox runner: executes Python on request, one request at a time.

Protocol (stdin -> stdout), both directions framed as a 4-byte big-endian length followed by that
many bytes of UTF-8 JSON. The runner's stdout carries nothing but frames. User code writes to
pipes of its own, and the runner makes itself non-dumpable so that code running as the same
user cannot open /proc/<runner>/fd/1. No output of user code can be mistaken for a reply,
whatever it prints.

Requests:
  {"id": 7, "op": "exec", "code": "...", "session": null | "name", "timeout_s": 10,
   "memory_mb": 512, "max_output_bytes": 16384, "stdin": ""}
  {"id": 8, "op": "close", "session": "name"}
  {"id": 9, "op": "ping"}
Reply to exec:
  {"id": 7, "stdout": "...", "stderr": "...", "exit_code": 0 | null, "timed_out": false,
   "memory_exceeded": false, "truncated": false, "duration_ms": 12.3,
   "session_lost": false, "error": null}

Without a session every exec runs in a fresh interpreter. With a session, the blocks of one
trajectory share one live interpreter (later blocks see earlier variables). A session whose
interpreter dies (time-out, memory kill, crash) is reported lost and is never silently replayed:
every later exec in it answers with session_lost and an error until it is closed.

Output is captured through pipes, never files, so code that fills /tmp still gets its error
message back; only the head and the tail are kept, within max_output_bytes.
"""

import ctypes
import fcntl
import json
import os
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

PR_SET_DUMPABLE = 4
# Files a run writes may not exceed this (RLIMIT_FSIZE); bounds /tmp per file.
FILE_LIMIT = 16 << 20
SCRATCH = os.environ.get("START_SANDBOX_TMP", tempfile.gettempdir())
# The scratch directory is wiped between runs only when it is ours alone: a directory the host
# gave us, or the container's own /tmp (we are PID 1). Never a shared /tmp of a host.
OWN_SCRATCH = "START_SANDBOX_TMP" in os.environ or os.getpid() == 1

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
    return apply


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


def memory_verdict(returncode, stderr_text):
    if returncode == -signal.SIGKILL:
        return True  # only the kernel's OOM killer sends a SIGKILL that we did not send
    return "MemoryError" in stderr_text[-4096:]


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
    def __init__(self):
        self.sessions = {}

    def exec_fresh(self, req, out, err):
        timeout = float(req.get("timeout_s", 10))
        memory_mb = int(req.get("memory_mb", 512))
        code_path = os.path.join(SCRATCH, ".start-cell-%d.py" % req["id"])
        with open(code_path, "w", encoding="utf-8") as f:
            f.write(req.get("code", ""))
        proc = subprocess.Popen(
            [sys.executable, "-I", code_path],
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
        return proc.returncode, not finished, False

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
        if op != "exec":
            return {"id": rid, "error": "unknown op %r" % (op,)}
        limit = int(req.get("max_output_bytes", 16384))
        out, err = Capture(limit), Capture(limit)
        started = time.monotonic()
        error = None
        session_lost = False
        try:
            if req.get("session"):
                code, timed_out, session_lost = self.exec_session(req, out, err)
                if session_lost:
                    lost = self.sessions[req["session"]].lost
                    error = "session %r is lost (%s); it is not replayed" % (req["session"], lost)
            else:
                code, timed_out, _ = self.exec_fresh(req, out, err)
        except OSError as e:
            code, timed_out, error = None, False, "could not start the interpreter: %s" % e
        duration_ms = (time.monotonic() - started) * 1000.0
        stdout, cut_out = out.text()
        stderr, cut_err = err.text()
        self.cleanup()
        memory = (not timed_out) and code is not None and code != 0 and memory_verdict(code, stderr)
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
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    os.makedirs(SCRATCH, exist_ok=True)
    stdin = sys.stdin.buffer
    # Nothing else may write to the reply channel: point fd 1 of the runner elsewhere.
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    replies = os.fdopen(reply_fd, "wb", buffering=0)
    runner = Runner()
    write_frame(replies, {"id": 0, "ready": True, "pid": os.getpid()})
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
    main()
