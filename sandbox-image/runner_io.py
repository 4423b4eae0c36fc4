"""The runner's plumbing: its protocol's frames (a 4-byte big-endian length, then UTF-8 JSON),
and a block's output read from its pipes (head and tail kept within a limit) and its stdin fed
without blocking the runner."""

import fcntl
import json
import os
import select
import struct
import threading
import time

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
