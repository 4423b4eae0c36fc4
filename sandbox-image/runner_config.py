"""The runner's settings, from its environment (the host sets them): the scratch directory,
the mode, what the fork server preloads, the cgroup, where attached files are kept, and the
limits on files, figures and SQL output. Shared by the runner's modules."""

import os
import tempfile

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
# The directory nothing of which a block may read but what it is given: its own attached files,
# its scratch directory and the runner's own files (the host names it: the container's data
# directory, or the process backend's directory of every runner's files; default DATA_DIR).
PRIVATE = os.environ.get("START_SANDBOX_PRIVATE") or DATA_DIR
# Set by the host only when the operator said so: a runner whose kernel cannot confine blocks
# (no Landlock, or a seccomp filter refusing it) starts anyway, unconfined, instead of refusing.
ALLOW_UNCONFINED = os.environ.get("START_SANDBOX_UNCONFINED") == "1"
DATA_BUDGET = int(os.environ.get("START_SANDBOX_DATA_MB", "256")) << 20
# Figures a block may bring back, and the largest PNG kept.
MAX_FIGURES = 8
MAX_FIGURE_BYTES = 1 << 20
# Largest figure rendered, in pixels: a block asking for a poster gets it at a lower dpi.
MAX_FIGURE_PIXELS = 4_000_000
FIGURE_DIR = ".start-figures"
# Rows of a statement's result printed by the SQL tool; the count of the rest follows.
SQL_ROWS = 50
