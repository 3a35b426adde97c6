//! Prometheus metrics of the runtime, read from the open stores at each scrape (so they
//! are never stale and cost nothing between scrapes):
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `dittofs_blockstore_dirty_files` | `store` | files with written data not yet chunked (in the journal + overlay) |
//! | `dittofs_blockstore_dirty_bytes` | `store` | bytes of that data |
//! | `dittofs_blockstore_used_bytes` | `store` | bytes on the local tier (chunks + journal) |
//!
//! `dirty_files` falls to 0 once the background flusher has caught up: operators see how
//! far behind it is, and the benchmark harness waits for it between workloads.

use crate::runtime::Runtime;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: String,
}

/// Emits the block-store gauges of a runtime on every scrape.
struct RuntimeCollector(Arc<Runtime>);

impl std::fmt::Debug for RuntimeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuntimeCollector")
    }
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let files = Family::<StoreLabels, Gauge>::default();
        let bytes = Family::<StoreLabels, Gauge>::default();
        let used = Family::<StoreLabels, Gauge>::default();
        for (name, e) in self.0.engines() {
            let dirty = e.engine.dirty_files();
            let l = StoreLabels { store: name };
            files.get_or_create(&l).set(gauge_value(dirty.len() as u64));
            bytes
                .get_or_create(&l)
                .set(gauge_value(dirty.iter().map(|(_, b, _)| *b).sum()));
            used.get_or_create(&l)
                .set(gauge_value(e.engine.used_bytes()));
        }
        for (name, help, family) in [
            (
                "blockstore_dirty_files",
                "Files with written data not yet chunked into the block store",
                &files,
            ),
            ("blockstore_dirty_bytes", "Bytes of that data", &bytes),
            (
                "blockstore_used_bytes",
                "Bytes on the local tier (chunks + write journal)",
                &used,
            ),
        ] {
            family.encode(encoder.encode_descriptor(name, help, None, family.metric_type())?)?;
        }
        Ok(())
    }
}

/// Gauges are i64; a count beyond that saturates (it cannot happen on a real disk).
fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Registers the runtime's gauges.
pub fn register(registry: &mut Registry, rt: &Arc<Runtime>) {
    registry.register_collector(Box::new(RuntimeCollector(rt.clone())));
    registry.register(
        "vfs_writes_refused",
        "Writes refused because the local tier stayed over its cap for the whole wait (the remote tier took nothing); logged at most once per 10 s",
        dittofs_vfs::writes_refused_counter(),
    );
}
