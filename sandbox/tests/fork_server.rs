//! The fork server on both backends: every block starts clean although the runner is reused,
//! and memory limits are cgroup limits. (Runner failures: `runner_failures.rs`.)

mod common;

use common::{one_runner, req, run, still_works};
use start_sandbox::BackendKind;

/// Pairs of blocks: the first leaves something behind, the second must not see it.
const LEFTOVERS: [(&str, &str, &str, &str); 7] = [
    (
        "globals",
        "planted = 41\ndef helper(): return 1",
        "print('planted' in globals(), 'helper' in dir())",
        "False False\n",
    ),
    (
        "modified modules",
        "import math, json, builtins, sys, types\nmath.pi = 3\njson.dumps = None\nbuiltins.len = lambda x: -1\nsys.modules['planted'] = types.ModuleType('planted')\nsys.path.insert(0, '/planted')",
        "import math, json, sys\nprint(math.pi, json.dumps is None, len('ab'), 'planted' in sys.modules, '/planted' in sys.path)",
        "3.141592653589793 False 2 False False\n",
    ),
    (
        "open files",
        "import os\nkept = open('held.txt', 'w')\nkept.write('x')\nfd = os.open('/dev/null', os.O_RDONLY)\nos.dup2(fd, 40)",
        "import os\nprint(sorted(int(f) for f in os.listdir('/proc/self/fd')) == [0, 1, 2, 3], os.path.exists('held.txt'))",
        "True False\n",
    ),
    (
        "threads",
        "import threading, time\nfor _ in range(3):\n    threading.Thread(target=time.sleep, args=(300,), daemon=True).start()\nprint(threading.active_count())",
        "import threading\nprint(threading.active_count())",
        "1\n",
    ),
    (
        "child processes",
        "import subprocess\nsubprocess.Popen(['sleep', '300'])\nsubprocess.Popen(['sleep', '301'], start_new_session=True)",
        "import os\nleft = []\nfor p in os.listdir('/proc'):\n    if p.isdigit():\n        try:\n            if b'sleep' in open('/proc/%s/cmdline' % p, 'rb').read():\n                left.append(p)\n        except OSError:\n            pass\nprint(left)",
        "[]\n",
    ),
    (
        "cwd and environment",
        "import os\nos.chdir('/')\nos.environ['PLANTED'] = '1'\nos.putenv('PLANTED_TOO', '1')",
        "import os\nprint(os.getcwd() != '/', 'PLANTED' in os.environ, 'PLANTED_TOO' in os.environ)",
        "True False False\n",
    ),
    (
        "signal handlers and recursion limit",
        "import signal, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nsys.setrecursionlimit(50)",
        "import signal, sys\nprint(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, sys.getrecursionlimit())",
        "True 1000\n",
    ),
];

async fn nothing_leaks_between_blocks(backend: BackendKind) {
    let sb = one_runner(backend).await;
    // The `open files` case compares against what a clean block sees: 0, 1, 2 and the fd the
    // listing itself opens.
    let baseline = run(
        &sb,
        "import os\nprint(sorted(int(f) for f in os.listdir('/proc/self/fd')))",
    )
    .await;
    assert_eq!(baseline.stdout, "[0, 1, 2, 3]\n", "{baseline:?}");
    for (name, dirty, check, expected) in LEFTOVERS {
        let r = run(&sb, dirty).await;
        assert!(
            r.exit_code == Some(0) && r.error.is_none(),
            "{name}: the first block failed: {r:?}"
        );
        let r = run(&sb, check).await;
        assert_eq!(r.stdout, expected, "{name}: the next block saw it: {r:?}");
    }
    // Two blocks draw different random numbers, as two fresh interpreters would; and str
    // hashes are the same in both (PYTHONHASHSEED is fixed for the runner).
    let draw = "import random\nprint(random.random(), hash('start'))";
    let (a, b) = (run(&sb, draw).await, run(&sb, draw).await);
    let (ra, ha) = a.stdout.trim().split_once(' ').expect("two fields");
    let (rb, hb) = b.stdout.trim().split_once(' ').expect("two fields");
    assert_ne!(ra, rb, "random state was shared: {a:?} {b:?}");
    assert_eq!(ha, hb, "hashes differ between blocks: {a:?} {b:?}");
    // Tracebacks name the block's own lines, not the harness.
    let r = run(&sb, "x = 1\nraise ValueError('boom')").await;
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("raise ValueError('boom')"),
        "{r:?}"
    );
    assert!(
        !r.stderr.contains("runner.py"),
        "the harness frame shows: {r:?}"
    );
    assert_eq!(
        sb.stats().recycled,
        0,
        "one runner served every block: {:?}",
        sb.stats()
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_blocks_start_clean_on_a_reused_runner() {
    nothing_leaks_between_blocks(BackendKind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_blocks_start_clean_on_a_reused_runner() {
    nothing_leaks_between_blocks(BackendKind::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_memory_limits_are_cgroup_limits_that_numpy_can_live_under() {
    let sb = one_runner(BackendKind::Docker).await;
    // numpy and sympy are preloaded: importing them in a block costs nothing.
    let r = run(
        &sb,
        "import sys\nprint('numpy' in sys.modules, 'sympy' in sys.modules)",
    )
    .await;
    assert_eq!(r.stdout, "True True\n", "{r:?}");
    // An address-space limit of 256 MiB would break this (OpenBLAS and numpy reserve far more
    // address space than they use); a cgroup limit does not.
    let r = run(
        &sb,
        "import numpy as np\na = np.ones(8_000_000)\nprint(int(a.sum()), np.linalg.inv(np.eye(50)).trace())",
    )
    .await;
    assert_eq!(r.stdout, "8000000 50.0\n", "{r:?}");
    // Using more than the block's limit is a memory kill, reported as the block's own.
    let r = run(
        &sb,
        "import numpy as np\nprint('allocating', flush=True)\na = np.ones(80_000_000)\nprint('survived')",
    )
    .await;
    assert!(r.memory_exceeded && !r.timed_out, "{r:?}");
    assert_eq!(r.stdout, "allocating\n", "{r:?}");
    // A larger limit on the request is applied to the runner's cgroup before the block runs.
    let mut big = req("import numpy as np\na = np.ones(80_000_000)\nprint('survived')");
    big.memory_mb = 900;
    let r = sb.execute(big).await.unwrap();
    assert_eq!(r.stdout, "survived\n", "{r:?}");
    still_works(&sb).await;
    sb.shutdown().await;
}

/// Where the process backend can make no memory cgroup, a forked block gets an address-space
/// limit instead: `memory_mb` beyond the mappings it holds already (the fork server's preloaded
/// numpy, sympy, pandas: hundreds of MiB), as a cgroup limit adds the runner's own size. The
/// runner is started here as the process backend starts it on such a host
/// (`START_SANDBOX_RLIMIT_AS=1`), on the Python of this test's PATH, which has those modules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cgroup_a_block_gets_its_memory_beyond_the_fork_servers() {
    use start_sandbox::protocol::{Link, ReplySource};
    use start_sandbox::ExecRequest;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let runner = start_sandbox::install_runner(dir.path()).unwrap();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = tokio::process::Command::new(&python)
        .arg(&runner)
        .env("START_SANDBOX_TMP", dir.path().join("tmp"))
        .env("START_SANDBOX_DATA", dir.path().join("data"))
        .env("START_SANDBOX_RLIMIT_AS", "1")
        .env("START_SANDBOX_PRELOAD", "numpy,sympy,pandas")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python} (run scripts/setup): {e}"));
    let mut link = Link::new(
        Box::pin(child.stdin.take().unwrap()),
        ReplySource::Pipe(Box::pin(child.stdout.take().unwrap())),
    );
    let hello = link.ready().await.unwrap();
    assert_eq!(hello.preloaded, ["numpy", "sympy", "pandas"], "{hello:?}");
    let block = |code: &str| ExecRequest {
        memory_mb: 256,
        timeout: std::time::Duration::from_secs(20),
        ..ExecRequest::new(code)
    };
    let r = link
        .execute(&block(
            "import numpy as np\nkept = bytearray(200 << 20)\n\
             print(np.linalg.inv(np.eye(3) * 2).trace(), len(kept) >> 20)",
        ))
        .await
        .unwrap();
    assert_eq!(r.stdout, "1.5 200\n", "{r:?}");
    let r = link
        .execute(&block("kept = bytearray(400 << 20)"))
        .await
        .unwrap();
    assert!(r.memory_exceeded, "400 MiB over a 256 MiB block: {r:?}");
    let _ = child.kill().await;
}
