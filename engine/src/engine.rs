//! The handle to the engine thread: starting it (the llama context is not `Send`, so it lives
//! on one thread fed by a channel), submitting trajectories, the progress counters, and
//! shutting down without leaving llama.cpp inside a decode.

use crate::config::EngineConfig;
use crate::info::{ModelInfo, Stats};
use crate::request::{Command, EngineError, GenOutput, GenRequest};
use crate::scheduler;
use start_sandbox::Sandbox;
use std::sync::mpsc;
use std::sync::Arc;

/// Handle to the engine thread.
pub struct Engine {
    /// `None` once shut down: later requests are answered with [`EngineError::Stopped`].
    tx: std::sync::Mutex<Option<mpsc::Sender<Command>>>,
    /// The loaded model.
    pub info: ModelInfo,
    stats: Arc<Stats>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Engine {
    /// Loads the model on a new thread and starts the batch loop. Tool calls run on `sandbox`
    /// through `runtime`; without a sandbox, code blocks get an error as their output.
    pub fn start(
        config: EngineConfig,
        sandbox: Option<Arc<Sandbox>>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, EngineError> {
        Self::spawn(
            config,
            #[cfg(feature = "scripted")]
            None,
            sandbox,
            runtime,
        )
    }

    /// An engine whose model "writes" the scripted openings first (tests only: the feature
    /// `scripted`; see [`crate::script::Script`]).
    #[cfg(feature = "scripted")]
    pub fn start_scripted(
        config: EngineConfig,
        script: crate::script::Script,
        sandbox: Option<Arc<Sandbox>>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, EngineError> {
        Self::spawn(config, Some(script), sandbox, runtime)
    }

    fn spawn(
        config: EngineConfig,
        #[cfg(feature = "scripted")] script: Option<crate::script::Script>,
        sandbox: Option<Arc<Sandbox>>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, EngineError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("start-engine".into())
            .spawn(move || {
                let ran = scheduler::run(
                    config,
                    #[cfg(feature = "scripted")]
                    script,
                    sandbox,
                    runtime,
                    rx,
                    &ready_tx,
                    thread_stats,
                );
                if let Err(e) = ran {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| EngineError::Llama(e.to_string()))?;
        let info = ready_rx.recv().map_err(|_| EngineError::Stopped)??;
        Ok(Self {
            tx: std::sync::Mutex::new(Some(tx)),
            info,
            stats,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Takes no more requests, lets those in flight end, and waits until the engine thread
    /// has exited: its context, model and (on a GPU) memory are freed, and so is llama.cpp's
    /// OpenMP team. A process must not exit while that thread is inside a decode, whose
    /// threads the exit's C++ destructors would pull away. Requests whose callers stopped
    /// waiting end at the next step, and a tool call within its time-out. Blocks the calling
    /// thread; later calls return at once.
    pub fn shutdown(&self) {
        drop(self.tx.lock().expect("engine sender lock").take());
        let thread = self.thread.lock().expect("engine thread lock").take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Queues a trajectory; the receiver gets it when it is done.
    pub fn submit(
        &self,
        request: GenRequest,
    ) -> tokio::sync::oneshot::Receiver<Result<GenOutput, EngineError>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let command = Command::Generate(Box::new(request), reply, tracing::Span::current());
        let refused = match self.tx.lock().expect("engine sender lock").as_ref() {
            Some(tx) => tx.send(command).err().map(|mpsc::SendError(c)| c),
            None => Some(command),
        };
        if let Some(Command::Generate(_, reply, _)) = refused {
            let _ = reply.send(Err(EngineError::Stopped));
        }
        rx
    }

    /// Progress counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
