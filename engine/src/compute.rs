//! Where query work runs: a tokio runtime of the engine's own ([`ComputePool`]), apart
//! from the runtime that serves HTTP. PromQL kernels and DataFusion operators are long
//! synchronous loops between await points; on the server's workers two heavy queries would
//! hold every worker, and `/-/healthy`, scrapes and remote writes would wait for them.
//! On the pool they compete with the server only for CPU time, which the OS shares.
//!
//! Also [`Spawned`]: a task aborted when its handle drops, so a failed, timed-out or
//! abandoned query stops its parts instead of letting them run on.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{EngineError, Result};

/// A task aborted when its handle is dropped: when a query fails (a limit, an error in
/// another part) or is cancelled (timeout, client gone), its other parts stop at their
/// next await point instead of running on, holding memory.
pub(crate) struct Spawned<T>(tokio::task::JoinHandle<T>);

impl<T: Send + 'static> Spawned<T> {
    /// Spawns `fut` on the current runtime.
    pub(crate) fn new(fut: impl Future<Output = T> + Send + 'static) -> Self {
        Spawned(tokio::spawn(fut))
    }

    /// Spawns `fut` on the runtime of `handle`.
    fn on(handle: &tokio::runtime::Handle, fut: impl Future<Output = T> + Send + 'static) -> Self {
        Spawned(handle.spawn(fut))
    }
}

impl<T> Future for Spawned<T> {
    type Output = std::result::Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The engine's query runtime; without one (`threads == 0`, or the OS refused threads)
/// queries run on the caller's runtime.
pub(crate) struct ComputePool {
    rt: Option<tokio::runtime::Runtime>,
}

impl ComputePool {
    /// A runtime of `threads` workers named `strata-query`.
    pub(crate) fn new(threads: usize) -> ComputePool {
        let rt = (threads > 0)
            .then(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .thread_name("strata-query")
                    .enable_all()
                    .build()
                    .ok()
            })
            .flatten();
        ComputePool { rt }
    }

    /// Runs `work` on the pool and waits for it; a panic in it is an error of this query,
    /// not of the caller.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        match &self.rt {
            Some(rt) => Spawned::on(rt.handle(), work)
                .await
                .map_err(|e| EngineError::Exec(format!("query task failed: {e}")))?,
            None => work.await,
        }
    }
}

impl Drop for ComputePool {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Default size of the pool: one worker per core the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
