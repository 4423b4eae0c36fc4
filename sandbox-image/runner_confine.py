"""What confines a block: rlimits (CPU, file size, address space where no cgroup limits
memory), the cgroup's memory and oom_kill counter, and Landlock, under which a block writes
only beneath its scratch directory and /dev."""

import ctypes
import os
import resource
import signal
import struct

from runner_config import CGROUP, FILE_LIMIT, RLIMIT_AS, SCRATCH

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
