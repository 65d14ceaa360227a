//! Graceful shutdown: one token every task watches, cancelled by SIGTERM or Ctrl-C.

use tokio_util::sync::CancellationToken;

/// A shutdown signal shared by the runner, the HTTP server and the service's own tasks.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A signal that nothing has triggered yet.
    pub fn new() -> Self {
        Shutdown {
            token: CancellationToken::new(),
        }
    }

    /// Triggers shutdown.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when shutdown is triggered.
    pub async fn wait(&self) {
        self.token.cancelled().await
    }

    /// The underlying token, for `tokio::select!` in long operations.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// A signal that triggers when SIGTERM or SIGINT arrives.
    pub fn on_signals() -> Self {
        let shutdown = Shutdown::new();
        let s = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received: finishing the record in hand");
            s.trigger();
        });
        shutdown
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot install SIGTERM handler; only Ctrl-C stops this service");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
