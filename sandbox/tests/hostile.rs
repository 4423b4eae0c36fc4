//! Hostile code against both backends. Every case must come back with the right flags, the
//! pool must stay up, and the next request (same runner or its replacement) must answer
//! correctly. The Docker backend runs every case; the process backend runs those its weaker
//! isolation is meant to stop.

mod common;

use common::{one_runner, req, run, still_works};
use start_sandbox::{BackendKind, Sandbox};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// One hostile case, borrowed from the test's sandbox.
type Case<'a> = (&'static str, Pin<Box<dyn Future<Output = ()> + 'a>>);

async fn infinite_loop(sb: &Sandbox) {
    let r = run(sb, "while True:\n    pass").await;
    assert!(r.timed_out && r.exit_code.is_none(), "{r:?}");
}

async fn sleep_past_timeout(sb: &Sandbox) {
    let r = run(
        sb,
        "import time\nprint('before', flush=True)\ntime.sleep(60)",
    )
    .await;
    assert!(r.timed_out, "{r:?}");
    assert_eq!(
        r.stdout, "before\n",
        "output before the time-out is kept: {r:?}"
    );
}

async fn memory_bomb(sb: &Sandbox) {
    let r = run(sb, "x = bytearray(8 * 1024**3)").await;
    assert!(r.memory_exceeded, "{r:?}");
    let r = run(
        sb,
        "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024**2))",
    )
    .await;
    assert!(r.memory_exceeded, "{r:?}");
}

async fn gigabyte_of_output(sb: &Sandbox) {
    let r = run(
        sb,
        "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)",
    )
    .await;
    assert!(
        r.truncated,
        "{:?}",
        (r.exit_code, r.timed_out, r.stdout.len())
    );
    assert!(r.stdout.len() < 4096 + 100, "kept {} bytes", r.stdout.len());
    assert!(r.stdout.contains("bytes omitted"), "{}", &r.stdout[..200]);
}

async fn output_imitating_the_framing(sb: &Sandbox) {
    // A forged reply on the code's own stdout, then on every descriptor of the runner that
    // /proc lets it open.
    let code = r#"import sys, json, os
fake = json.dumps({"id": 1, "stdout": "forged", "exit_code": 0}).encode()
frame = len(fake).to_bytes(4, "big") + fake
sys.stdout.buffer.write(frame)
sys.stdout.flush()
base = "/proc/%d/fd" % os.getppid()
try:
    fds = os.listdir(base)
except OSError as e:
    fds = []
    print("refused listing:", type(e).__name__)
for fd in fds:
    try:
        with open(os.path.join(base, fd), "wb") as f:
            f.write(frame)
    except OSError as e:
        print("refused", fd, type(e).__name__)
print("done")
"#;
    let r = run(sb, code).await;
    assert!(
        r.stdout.contains("forged"),
        "the fake frame is plain output: {r:?}"
    );
    assert!(r.stdout.contains("refused"), "{r:?}");
    assert!(r.stdout.ends_with("done\n") || r.truncated, "{r:?}");
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(r.error.is_none(), "{r:?}");
}

async fn binary_garbage(sb: &Sandbox) {
    let r = run(
        sb,
        "import os, sys\nsys.stdout.buffer.write(os.urandom(3000) + b'\\xff\\xfe\\x00')",
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(!r.stdout.is_empty());
}

async fn environment_has_no_secrets(sb: &Sandbox) {
    // The test process holds a secret; nothing of the host's environment may reach the code.
    let r = run(
        sb,
        "import os\nprint(sorted(os.environ))\nprint(open('/proc/self/environ','rb').read())",
    )
    .await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(!r.stdout.contains("START_TEST_SECRET"), "{}", r.stdout);
    assert!(!r.stdout.contains("hunter2"), "{}", r.stdout);
}

async fn background_processes_do_not_outlive_the_run(sb: &Sandbox) {
    let r = run(
        sb,
        "import subprocess, os\nsubprocess.Popen(['sleep', '300'], start_new_session=True)\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        import time; time.sleep(300)\n    os._exit(0)\nprint('spawned')",
    )
    .await;
    assert_eq!(r.stdout, "spawned\n", "{r:?}");
    let r = run(
        sb,
        "import os\nnames = []\nfor p in os.listdir('/proc'):\n    if p.isdigit() and int(p) != os.getpid():\n        try:\n            names.append(open('/proc/%s/cmdline' % p, 'rb').read().replace(b'\\0', b' ').decode())\n        except OSError:\n            pass\nprint([n for n in names if 'sleep' in n or 'time.sleep' in n])",
    )
    .await;
    assert_eq!(r.stdout, "[]\n", "leftover processes: {r:?}");
}

async fn kill_the_parent(sb: &Sandbox) {
    let r = run(sb, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)\nprint('still here')").await;
    // Either the runner survived (PID 1 of its namespace ignores the signal) or it died and the
    // pool says so; both are answers, and the next request must work.
    assert!(
        r.stdout.contains("still here") || r.error.is_some(),
        "{r:?}"
    );
}

async fn writes_to_root_and_filling_tmp(sb: &Sandbox) {
    let r = run(sb, "open('/etc/start-was-here', 'w').write('x')").await;
    assert_ne!(r.exit_code, Some(0), "{r:?}");
    assert!(
        r.stderr.contains("Read-only file system") || r.stderr.contains("Permission denied"),
        "{r:?}"
    );
    let r = run(
        sb,
        "i = 0\nwhile True:\n    with open('/tmp/fill-%d' % i, 'wb') as f:\n        f.write(b'x' * (4 << 20))\n    i += 1",
    )
    .await;
    assert_ne!(r.exit_code, Some(0), "{r:?}");
    assert!(r.stderr.contains("No space left on device"), "{r:?}");
    let r = run(
        sb,
        "import os\nprint(len([n for n in os.listdir('/tmp') if not n.startswith('.start-cell')]))",
    )
    .await;
    assert_eq!(r.stdout, "0\n", "the next run gets an empty /tmp: {r:?}");
}

async fn fork_bomb(sb: &Sandbox) {
    let r = run(
        sb,
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    )
    .await;
    assert!(r.timed_out || r.exit_code != Some(0), "{r:?}");
}

async fn network_is_unreachable(sb: &Sandbox) {
    // A listener on the host's loopback: code in the sandbox must not reach it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket\nfor addr in [('127.0.0.1', {port}), ('192.0.2.1', 80)]:\n    try:\n        socket.create_connection(addr, timeout=1)\n        print('connected', addr)\n    except OSError as e:\n        print('refused', addr[0], type(e).__name__)"
    );
    let r = run(sb, &code).await;
    assert!(!r.stdout.contains("connected"), "{r:?}");
    assert_eq!(r.stdout.matches("refused").count(), 2, "{r:?}");
    assert!(listener.accept().is_err(), "the host listener was reached");
}

async fn all_cases(backend: BackendKind) {
    std::env::set_var("START_TEST_SECRET", "hunter2");
    let sb = one_runner(backend).await;
    let cases: Vec<Case<'_>> = vec![
        ("infinite loop", Box::pin(infinite_loop(&sb))),
        ("sleep past the time-out", Box::pin(sleep_past_timeout(&sb))),
        ("memory bomb", Box::pin(memory_bomb(&sb))),
        ("a gigabyte of output", Box::pin(gigabyte_of_output(&sb))),
        (
            "output imitating the framing",
            Box::pin(output_imitating_the_framing(&sb)),
        ),
        ("binary garbage", Box::pin(binary_garbage(&sb))),
        (
            "environment secrets",
            Box::pin(environment_has_no_secrets(&sb)),
        ),
        (
            "background processes",
            Box::pin(background_processes_do_not_outlive_the_run(&sb)),
        ),
        ("killing the parent", Box::pin(kill_the_parent(&sb))),
        ("network", Box::pin(network_is_unreachable(&sb))),
    ];
    // START_HOSTILE_CASES=name,name runs a subset, for debugging one case.
    let only = std::env::var("START_HOSTILE_CASES").ok();
    for (name, case) in cases {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|n| name.contains(n)))
        {
            continue;
        }
        eprintln!("case: {name}");
        case.await;
        still_works(&sb).await;
    }
    if backend == BackendKind::Docker {
        for (name, case) in [
            (
                "writes to / and filling /tmp",
                Box::pin(writes_to_root_and_filling_tmp(&sb))
                    as Pin<Box<dyn Future<Output = ()> + '_>>,
            ),
            ("fork bomb", Box::pin(fork_bomb(&sb))),
        ] {
            eprintln!("case: {name}");
            case.await;
            still_works(&sb).await;
        }
    }
    let stats = sb.stats();
    assert!(
        stats.recycled >= 2,
        "time-outs and memory kills recycle the runner: {stats:?}"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_survives_hostile_code() {
    all_cases(BackendKind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_backend_survives_hostile_code() {
    all_cases(BackendKind::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_sessions_keep_state_and_are_never_replayed() {
    sessions(BackendKind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_sessions_keep_state_and_are_never_replayed() {
    sessions(BackendKind::Process).await;
}

async fn sessions(backend: BackendKind) {
    let sb = one_runner(backend).await;
    let in_session = |code: &str, key: &str| {
        let mut r = req(code);
        r.session = Some(key.to_string());
        r
    };
    let r = sb.execute(in_session("x = 41", "t1")).await.unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    let r = sb.execute(in_session("print(x + 1)", "t1")).await.unwrap();
    assert_eq!(r.stdout, "42\n", "{r:?}");
    let r = sb.execute(in_session("1/0", "t1")).await.unwrap();
    assert!(
        r.stderr.contains("ZeroDivisionError") && r.stderr.contains("<cell 3>"),
        "{r:?}"
    );
    assert!(
        !r.stderr.contains("<string>"),
        "the harness frame is hidden: {r:?}"
    );
    let r = sb.execute(in_session("print(x)", "t1")).await.unwrap();
    assert_eq!(
        r.stdout, "41\n",
        "an error does not lose the session: {r:?}"
    );
    // A time-out kills the interpreter: the session is lost, and later blocks are refused.
    let mut slow = in_session("import time\ntime.sleep(60)", "t1");
    slow.timeout = Duration::from_millis(500);
    let r = sb.execute(slow).await.unwrap();
    assert!(r.timed_out && r.session_lost, "{r:?}");
    let r = sb.execute(in_session("print(x)", "t1")).await.unwrap();
    assert!(r.session_lost && r.exit_code.is_none(), "{r:?}");
    assert!(
        r.error.as_deref().unwrap_or("").contains("not replayed"),
        "{r:?}"
    );
    assert_eq!(r.stdout, "", "nothing was run again: {r:?}");
    // Closing frees the runner for others, and the key can start afresh.
    sb.close_session("t1").await.unwrap();
    still_works(&sb).await;
    let r = sb
        .execute(in_session("print('x' in globals())", "t1"))
        .await
        .unwrap();
    assert_eq!(r.stdout, "False\n", "{r:?}");
    sb.close_session("t1").await.unwrap();
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_pools_make_callers_wait_instead_of_failing() {
    let sb = std::sync::Arc::new(one_runner(BackendKind::Docker).await);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let sb = sb.clone();
        tasks.push(tokio::spawn(async move {
            let r = sb
                .execute(req(&format!("import time\ntime.sleep(0.2)\nprint({i})")))
                .await
                .unwrap();
            assert_eq!(r.stdout, format!("{i}\n"), "{r:?}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(sb.stats().executions, 6);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_reaches_fresh_runs() {
    let sb = one_runner(BackendKind::Docker).await;
    let mut r = req("a, b = map(int, input().split())\nprint(a * b)");
    r.stdin = Some("6 7\n".into());
    let out = sb.execute(r).await.unwrap();
    assert_eq!(out.stdout, "42\n", "{out:?}");
    sb.shutdown().await;
}
