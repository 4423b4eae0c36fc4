"""What confines a block: rlimits (CPU, file size, address space where no cgroup limits
memory), the cgroup's memory and oom_kill counter, and Landlock, under which a block writes
only beneath its scratch directory and /dev, and reads nothing of the runner's private
directory (every problem's attached files) but its own problem's files."""

import ctypes
import os
import resource
import signal
import stat
import struct

from runner_config import CGROUP, FILE_LIMIT, PRIVATE, RLIMIT_AS, SCRATCH

def limits(memory_mb, cpu_s, own_files=()):
    """preexec_fn: resource limits for a child, applied after fork, before exec; under
    Landlock it reads of the private directory only `own_files`."""
    def apply():
        mem = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        if LANDLOCK_ABI:
            confine(own_files)
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


# --- Landlock: a block writes only beneath its scratch directory, reads only its own files ------

# Landlock's file-system rights that change something (linux/landlock.h), by the ABI that added
# them: every kind of write is confined to the scratch directory and /dev.
LANDLOCK_WRITES = (
    (1, (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10)
     | (1 << 11) | (1 << 12)),  # write_file, remove_dir/file, make_char/dir/reg/sock/fifo/block/sym
    (2, 1 << 13),  # refer (link and rename across directories)
    (3, 1 << 14),  # truncate
)
# The rights that read (ABI 1): execute, read_file, read_dir. Beneath the private directory a
# block gets read_file on its own attached files alone: no listing, no other file by any name
# (a hash, a link, /proc/<pid>/root/...: Landlock checks the file reached, not the name used).
READ_EXECUTE, READ_FILE, READ_DIR = 1 << 0, 1 << 2, 1 << 3
LANDLOCK_READS = READ_EXECUTE | READ_FILE | READ_DIR
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


def inside(root, path):
    return path == root or path.startswith(root.rstrip("/") + "/")


def readable_roots(private, grants):
    """The directories a block may read beneath: `grants`, and every entry of each directory on
    the way from / down to `private` but the next step of that way, so that all the file system
    is readable but `private` (and nothing that links into it or above it). Found once, at the
    runner's start: an entry made later is not readable."""
    if not private:
        return ["/"]
    private = os.path.realpath(private)
    roots = list(grants)
    parent = "/"
    for part in [p for p in private.split("/") if p]:
        try:
            entries = sorted(os.listdir(parent))
        except OSError:
            entries = []
        for entry in entries:
            if entry == part:
                continue
            path = os.path.join(parent, entry)
            real = os.path.realpath(path)
            if inside(private, real) or inside(real, private):
                continue
            roots.append(path)
        parent = os.path.join(parent, part)
    return roots


# Made by the fork server once (prepare_reads), reused by each block's confine(): the readable
# roots as rules ready to add, each naming an O_PATH descriptor the fork server keeps open, so
# that a block adds them without opening, checking or closing anything (1,160 roots measured:
# 21 ms added to a block when each was opened per block, about 4.5 ms so); and the roots past
# the descriptor limit, opened per block as before.
READ_RULES = None
READ_LATER = []
# What a regular file's rule may hold (a directory's rights would be refused on a file).
FILE_RIGHTS = READ_EXECUTE | READ_FILE | (1 << 1) | (1 << 14)


def rule_for(fd, rights):
    """A path-beneath rule granting `rights` on `fd`'s file or directory (on a file, only the
    rights a file takes)."""
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        rights &= FILE_RIGHTS
    return ctypes.create_string_buffer(struct.pack("=Qi", rights, fd))


def prepare_reads(runner_dir):
    """Finds what blocks may read: everything outside the private directory, and inside it the
    runner's own files (fresh mode and SQL start the runner; the scratch directory and /dev are
    readable through their write rules); opens each once. Returns the roots."""
    global READ_RULES, READ_LATER
    grants = []
    if PRIVATE and inside(os.path.realpath(PRIVATE), os.path.realpath(runner_dir)):
        grants.append(runner_dir)
    roots = readable_roots(PRIVATE, grants)
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = len(roots) + 256
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (
                want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    except (OSError, ValueError):
        pass
    rules, later = [], []
    for i, path in enumerate(roots):
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        except OSError:
            later = roots[i:]
            break
        rules.append(rule_for(fd, LANDLOCK_READS))
    READ_RULES, READ_LATER = rules, later
    return roots


def confine(own_files=()):
    """From here on, this process and everything it starts may write only beneath its scratch
    directory and /dev, and read only outside the private directory, plus `own_files` (its
    problem's attached files) within it (Landlock; irrevocable). Raises OSError where it
    cannot."""
    if not LANDLOCK_ABI:
        raise OSError("Landlock is not available")
    if READ_RULES is None:
        prepare_reads(os.path.dirname(os.path.abspath(__file__)))
    libc = ctypes.CDLL(None, use_errno=True)
    writes = 0
    for abi, rights in LANDLOCK_WRITES:
        if LANDLOCK_ABI >= abi:
            writes |= rights
    handled = writes | LANDLOCK_READS
    attr = ctypes.create_string_buffer(struct.pack("QQQ", handled, 0, 0))
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(8 if LANDLOCK_ABI < 4 else 24),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    syscall, nr = libc.syscall, SYS_LANDLOCK_ADD_RULE
    fd_arg, path_beneath, no_flags = ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.c_uint32(0)

    def add(rule):
        return syscall(nr, fd_arg, path_beneath, rule, no_flags) == 0

    def allow(path, rights):
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            if not add(rule_for(fd, rights)):
                raise OSError(ctypes.get_errno(), "landlock_add_rule %s" % path)
        finally:
            os.close(fd)

    try:
        # A root Landlock takes no rule for (or one gone since the runner started) is only
        # not readable to the block.
        for rule in READ_RULES:
            syscall(nr, fd_arg, path_beneath, rule, no_flags)
        for path in READ_LATER:
            try:
                allow(path, LANDLOCK_READS)
            except OSError:
                pass
        for path in writable_paths():
            allow(path, writes | LANDLOCK_READS)
        for path in own_files:
            allow(path, READ_FILE)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def landlock_works():
    """Whether a child can confine itself (a seccomp filter may allow the ABI query and
    refuse the rest), and is then kept out of the private directory: tried once at start, in
    a throwaway child."""
    pid = os.fork()
    if pid == 0:
        try:
            confine()
            if PRIVATE and os.path.isdir(PRIVATE):
                try:
                    os.listdir(PRIVATE)
                    os._exit(2)
                except PermissionError:
                    pass
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


def writable_paths():
    """Where a block may write: its scratch directory, and /dev (null, shm)."""
    return [SCRATCH, "/dev"]
