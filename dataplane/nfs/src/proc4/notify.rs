//! The task that sends CB_NOTIFY_LOCK (RFC 8881 section 20.11) to the lock-owners
//! `lockwait` took off its table when a lock on their file was released: one callback
//! per waiter on a usable back channel of its client, fire and forget within the back
//! channel's timeout (the client polls anyway; a lost notice costs it its polling
//! interval). Kept apart from the table so the table does not know the server's
//! `Shared`, which holds it.

use crate::backchannel::CB_TIMEOUT;
use crate::shared::Shared;
use std::sync::Arc;

/// Sends CB_NOTIFY_LOCK to the lock-owners whose file had a lock released. Runs until
/// the server drops.
pub(crate) async fn run_notifies(shared: Arc<Shared>) {
    let Some(mut rx) = shared.lock_waits.take_notices() else {
        return;
    };
    while let Some(waiters) = rx.recv().await {
        for w in waiters {
            let Some(back) = shared.deleg.back_for(w.client) else {
                continue;
            };
            shared.metrics.lock_notifies.inc();
            tokio::spawn(async move {
                let sent = back.notify_lock(&w.fh, w.client, &w.owner);
                match tokio::time::timeout(CB_TIMEOUT, sent).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "CB_NOTIFY_LOCK failed"),
                    Err(_) => tracing::debug!("CB_NOTIFY_LOCK timed out"),
                }
            });
        }
    }
}
