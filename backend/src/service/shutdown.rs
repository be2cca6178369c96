//! Serving until a signal, then stopping as DESIGN.md says: on SIGTERM, /ready turns 503 at once
//! while the server keeps serving for `SHUTDOWN_DRAIN_SECONDS` (so endpoints can be removed);
//! then it stops accepting and lets in-flight requests finish within `SHUTDOWN_TIMEOUT_SECONDS`.
//! Ctrl-C (SIGINT, a person at a terminal) skips the drain pause.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::Router;
use tokio::{net::TcpListener, sync::watch};

use super::server::{self, ServerSettings};

/// How the server was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM: drain first (an orchestrator is moving traffic away).
    Drain,
    /// SIGINT / Ctrl-C: stop without the drain pause.
    Immediate,
}

/// How long each phase of a graceful stop lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownPolicy {
    /// After SIGTERM: how long to keep serving with /ready at 503 (`SHUTDOWN_DRAIN_SECONDS`).
    pub drain: Duration,
    /// After the drain: how long in-flight requests may take to finish (`SHUTDOWN_TIMEOUT_SECONDS`).
    pub grace: Duration,
}

impl ShutdownPolicy {
    /// The policy from the two settings, in whole seconds.
    pub fn from_secs(drain_seconds: u64, grace_seconds: u64) -> Self {
        Self {
            drain: Duration::from_secs(drain_seconds),
            grace: Duration::from_secs(grace_seconds),
        }
    }
}

/// Logs `listening on http://ADDR` (tools read the port from it), serves `router` (see
/// [`super::server`] for the connection limits in `settings`) until `shutdown` resolves, then
/// drains and stops as described in the module docs. While draining, answers carry
/// `Connection: close`.
///
/// `on_stop` runs as soon as the stop is requested (each service turns its /ready to 503 there);
/// `release` runs once serving has ended, whether cleanly or not (the backend closes its database).
/// An error when in-flight requests outlive `policy.grace`.
pub async fn serve_until_stopped(
    listener: TcpListener,
    router: Router,
    settings: ServerSettings,
    policy: ShutdownPolicy,
    shutdown: impl Future<Output = Shutdown> + Send + 'static,
    on_stop: impl FnOnce() + Send + 'static,
    release: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let ShutdownPolicy { drain, grace } = policy;
    let draining = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = {
        let draining = draining.clone();
        tokio::spawn(async move {
            let how = shutdown.await;
            // Before /ready turns 503, so whoever sees that also sees `Connection: close`.
            draining.store(true, Ordering::SeqCst);
            on_stop();
            if how == Shutdown::Drain && !drain.is_zero() {
                tracing::info!(
                    "shutdown requested: /ready now answers 503; still serving for {}s",
                    drain.as_secs()
                );
                tokio::time::sleep(drain).await;
            }
            tracing::info!("no longer accepting connections; finishing in-flight requests");
            let _ = stop_tx.send(true);
            let _ = stopping_tx.send(());
        })
    };
    let deadline = async move {
        // If the server ends on its own the sender is dropped; then there is nothing to time.
        if stopping_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        () = server::serve(listener, router, settings, draining, stop_rx) => Ok(()),
        () = deadline => Err(anyhow::anyhow!(
            "in-flight requests did not finish within {}s (SHUTDOWN_TIMEOUT_SECONDS); stopping anyway",
            grace.as_secs()
        )),
    };
    signal.abort();
    release.await;
    if result.is_ok() {
        tracing::info!("stopped cleanly");
    }
    result
}

/// Waits for SIGTERM (drain) or Ctrl-C (immediate).
pub async fn stop_signal() -> Shutdown {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => Shutdown::Immediate,
        () = terminate => Shutdown::Drain,
    }
}
