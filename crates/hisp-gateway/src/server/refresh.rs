//! The trust bundles kept current while a server runs.

use std::sync::Arc;

use hisp_smtp::Shutdown;
use hisp_store::Store;
use tracing::warn;

use super::settings::BundleRefresh;
use crate::bundles::refresh_bundles;

/// Every [`BundleRefresh::check_every`], fetches again each bundle whose
/// refresh interval has passed, until `stop`; a failure keeps the last good
/// copy in force and is logged. Fetching blocks, so it runs on the blocking
/// pool.
pub(super) async fn refresh_bundles_forever(
    store: Arc<dyn Store>,
    refresh: BundleRefresh,
    stop: Shutdown,
) {
    while !stop.is_triggered() {
        let s = store.clone();
        let fetcher = refresh.fetcher.clone();
        let done = tokio::task::spawn_blocking(move || {
            refresh_bundles(
                s.as_ref(),
                fetcher.as_ref(),
                None,
                time::OffsetDateTime::now_utc(),
                true,
            )
        })
        .await;
        match done {
            Ok(Err(e)) => warn!(error = %e, "bundle refresh: the store failed"),
            Err(e) => warn!(error = %e, "bundle refresh task failed"),
            Ok(Ok(_)) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(refresh.check_every) => {}
            () = stop.triggered() => {}
        }
    }
}
