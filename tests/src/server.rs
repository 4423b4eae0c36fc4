//! One way to run a test server: a child process spawned from its command, waited for until it
//! answers (an exit or the deadline first is a panic that says which, with the end of its log
//! where it keeps one), killed with SIGKILL (its whole process group when it leads one) by
//! `kill` and on drop, and spawned again from the same command, on the same port, by `restart`.
//! llama-server, vLLM and redis-server are each this with their own command and readiness
//! check; [`TestServer`] is what a test that kills and restarts a server holds.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Builds the server's command, afresh for every start.
type MakeCommand = Box<dyn Fn() -> Command + Send + Sync>;
/// Whether the server answers yet.
type Ready = Box<dyn Fn() -> bool + Send + Sync>;

/// A server child process.
pub struct ServerProcess {
    name: String,
    command: MakeCommand,
    ready: Ready,
    timeout: Duration,
    log: Option<PathBuf>,
    group: bool,
    child: Option<Child>,
}

impl ServerProcess {
    /// A server called `name` (in messages), started by `command`, ready when `ready` says so,
    /// within `timeout`. Its output goes nowhere unless [`ServerProcess::log_to`] names a file.
    pub fn new(
        name: impl Into<String>,
        timeout: Duration,
        command: impl Fn() -> Command + Send + Sync + 'static,
        ready: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            command: Box::new(command),
            ready: Box::new(ready),
            timeout,
            log: None,
            group: false,
            child: None,
        }
    }

    /// Appends the server's stdout and stderr to `path`, whose end a failure shows.
    pub fn log_to(mut self, path: PathBuf) -> Self {
        self.log = Some(path);
        self
    }

    /// Starts the server as the leader of its own process group, and kills the whole group:
    /// for a server that starts processes of its own.
    pub fn in_own_group(mut self) -> Self {
        self.group = true;
        self
    }

    /// Spawns the server and waits until it is ready; `Err` when the command cannot start.
    /// Panics when it exits first or is not ready in time.
    pub fn start(&mut self) -> Result<(), String> {
        self.kill();
        let mut cmd = (self.command)();
        cmd.stdin(Stdio::null());
        match &self.log {
            Some(path) => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("{}: the log {}: {e}", self.name, path.display()))?;
                let err = log
                    .try_clone()
                    .map_err(|e| format!("{}: the log: {e}", self.name))?;
                cmd.stdout(log).stderr(err);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        if self.group {
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("{} cannot start: {e}", self.name))?;
        self.child = Some(child);
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            if (self.ready)() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("{} exited ({status}){}", self.name, self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} was not ready within {:.0} s{}",
            self.name,
            self.timeout.as_secs_f64(),
            self.log_tail()
        );
    }

    /// Kills the server (as a crash would: SIGKILL), and its group when it leads one.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.group {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", c.id())])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills it and starts it again from the same command; panics when it cannot.
    pub fn restart(&mut self) {
        if let Err(e) = self.start() {
            panic!("{e}");
        }
    }

    /// The end of the server's log, as a message suffix (empty without a log).
    pub fn log_tail(&self) -> String {
        let Some(path) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        format!(":\n{}", &text[start..])
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A server a test can kill and bring back: its URL stays the same across restarts.
pub trait TestServer {
    /// The URL a client is pointed at.
    fn url(&self) -> String;
    /// Its process.
    fn process(&mut self) -> &mut ServerProcess;
    /// Kills it (SIGKILL).
    fn kill(&mut self) {
        self.process().kill();
    }
    /// Starts it again and waits until it answers.
    fn restart(&mut self) {
        self.process().restart();
    }
}
