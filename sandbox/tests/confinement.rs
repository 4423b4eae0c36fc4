//! A kernel that cannot confine blocks gets a refusal, not an unconfined runner. The kernel is
//! made one for real: the runner's interpreter starts under a seccomp filter that fails
//! Landlock's system calls with ENOSYS, as a kernel built without Landlock does (or a container
//! runtime whose seccomp profile predates it).

use start_sandbox::{BackendKind, ExecRequest, Sandbox, SandboxConfig, SandboxError, SandboxFile};
use std::time::Duration;

/// Installs the filter, then becomes the interpreter it was asked to run. The filter holds
/// across exec (no_new_privs is set first, as an unprivileged filter needs).
const DENY_LANDLOCK: &str = r#"import ctypes, os, struct, sys
# Load the system call number; 444..446 (landlock_create_ruleset, _add_rule, _restrict_self,
# the same numbers on every architecture) fail with ENOSYS; everything else is allowed.
program = [
    (0x20, 0, 0, 0),
    (0x35, 0, 2, 444),
    (0x35, 1, 0, 447),
    (0x06, 0, 0, 0x00050000 | 38),
    (0x06, 0, 0, 0x7FFF0000),
]
code = b"".join(struct.pack("HBBI", *insn) for insn in program)
buf = ctypes.create_string_buffer(code, len(code))
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Prog(len(program), ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
    sys.exit("seccomp: errno %d" % ctypes.get_errno())
os.execv(sys.executable, [sys.executable] + sys.argv[1:])
"#;

/// A `python` for the process backend that runs under the filter.
fn python_without_landlock(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let filter = dir.join("deny_landlock.py");
    std::fs::write(&filter, DENY_LANDLOCK).unwrap();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let wrapper = dir.join("python-without-landlock");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {python} {} \"$@\"\n", filter.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper.display().to_string()
}

fn config(python: String, allow_unconfined: bool) -> SandboxConfig {
    SandboxConfig {
        backend: BackendKind::Process,
        pool_size: 1,
        python,
        preload: Some(vec!["math".into()]),
        allow_unconfined,
        ..SandboxConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_landlock_the_runner_refuses_unless_told_to_run_unconfined() {
    let dir = tempfile::tempdir().unwrap();
    let python = python_without_landlock(dir.path());
    match Sandbox::start(config(python.clone(), false)).await {
        Err(SandboxError::Refused(why)) => {
            assert!(why.contains("Landlock"), "{why}");
            assert!(why.contains("START_SANDBOX_UNCONFINED=1"), "{why}");
        }
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("a runner that cannot confine blocks started"),
    }
    // Told to, it starts, and it is what the refusal said: a block reads the runner's files.
    let sb = Sandbox::start(config(python, true))
        .await
        .expect("an unconfined runner when asked for one");
    let file = SandboxFile::new("a.csv", &b"x\n1\n"[..]);
    let r = sb
        .execute(ExecRequest {
            files: vec![file.clone()],
            timeout: Duration::from_secs(5),
            ..ExecRequest::new(
                "import os\nprint(os.listdir(os.path.dirname(os.path.realpath('a.csv'))))",
            )
        })
        .await
        .unwrap();
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(r.stdout.contains(&file.sha256), "unconfined: {r:?}");
    sb.shutdown().await;
}

/// The same start on this kernel, without the filter, confines (the test above is not passing
/// because the kernel never had Landlock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_landlock_the_same_runner_confines() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let sb = Sandbox::start(config(python, false))
        .await
        .expect("this kernel has Landlock (Linux 5.13 or later)");
    let file = SandboxFile::new("a.csv", &b"x\n1\n"[..]);
    let r = sb
        .execute(ExecRequest {
            files: vec![file],
            timeout: Duration::from_secs(5),
            ..ExecRequest::new(
                "import os\ntry:\n    os.listdir(os.path.dirname(os.path.realpath('a.csv')))\n    \
                 print('ALLOWED')\nexcept PermissionError:\n    print('refused')",
            )
        })
        .await
        .unwrap();
    assert_eq!(r.stdout, "refused\n", "{r:?}");
    sb.shutdown().await;
}
