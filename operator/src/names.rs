//! Names, labels and small parsers shared by the reconcilers.
//!
//! Object names derived from a custom resource (all in the resource's namespace unless noted):
//!
//! | object | name |
//! |---|---|
//! | StatefulSet + Service of MetadataStore `m` | `dittofs-m` |
//! | control token Secret of `m` (key `token`) | `dittofs-m-control` |
//! | volume claim template of the embedded store / a local `fs` BlockStore `b` | `data` / `blocks-b` |
//! | PersistentVolume of Share `s` in namespace `ns` (cluster-scoped) | `dittofs-ns-s` |
//! | claim of Share `s` | `spec.persistentVolumeClaim.name`, default `s` |
//! | Job of one-shot GCJob `g` at generation `n` | `g-n` |
//! | CronJob of scheduled GCJob `g` | `g` |

use std::collections::BTreeMap;

/// The field manager of every server-side apply.
pub const MANAGER: &str = "dittofs-operator";
/// The finalizer on Shares (their PV and claim live outside the Share's namespace scope).
pub const SHARE_FINALIZER: &str = "dittofs.io/volumes";
/// Data directory of the data-plane container.
pub const DATA_DIR: &str = "/var/lib/dittofs";
/// Where the GC/audit job mounts the control token.
pub const TOKEN_MOUNT: &str = "/var/run/dittofs";

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_METADATA_STORE: &str = "dittofs.io/metadata-store";
pub const LABEL_SHARE: &str = "dittofs.io/share";
pub const LABEL_SHARE_NAMESPACE: &str = "dittofs.io/share-namespace";
pub const LABEL_GCJOB: &str = "dittofs.io/gcjob";

/// Label selector matching everything this operator labels.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGER}")
}

pub fn group_name(metadata_store: &str) -> String {
    format!("dittofs-{metadata_store}")
}

pub fn token_secret_name(metadata_store: &str) -> String {
    format!("dittofs-{metadata_store}-control")
}

pub fn pv_name(namespace: &str, share: &str) -> String {
    truncate_dns(&format!("dittofs-{namespace}-{share}"), 253)
}

/// Volume (claim template) name of a local `fs` block store. DNS label, at most 63.
pub fn block_volume_name(block_store: &str) -> String {
    truncate_dns(&format!("blocks-{block_store}"), 63)
}

pub fn oneshot_job_name(gcjob: &str, generation: i64) -> String {
    let suffix = format!("-{generation}");
    let mut base = gcjob.to_string();
    base.truncate(63usize.saturating_sub(suffix.len()));
    format!("{}{suffix}", base.trim_end_matches(['-', '.']))
}

/// Cuts `s` to `max` characters, replacing the tail by a short hash so that two long names
/// that share a prefix still differ.
fn truncate_dns(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(s.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut head = s[..max - 9].to_string();
    while head.ends_with(['-', '.']) {
        head.pop();
    }
    format!("{head}-{hash}")
}

/// Labels of the data-plane pods of MetadataStore `ms` (also the StatefulSet selector).
pub fn selector_labels(ms: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_string(), "dittofs".to_string()),
        (LABEL_INSTANCE.to_string(), ms.to_string()),
        (LABEL_COMPONENT.to_string(), "dataplane".to_string()),
    ])
}

/// Labels on everything made for MetadataStore `ms`.
pub fn group_labels(ms: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(ms);
    l.insert(LABEL_MANAGED_BY.to_string(), MANAGER.to_string());
    l.insert(LABEL_METADATA_STORE.to_string(), ms.to_string());
    l
}

/// Labels on the PV and claim of a Share (point back to it).
pub fn share_labels(namespace: &str, share: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_string(), "dittofs".to_string()),
        (LABEL_MANAGED_BY.to_string(), MANAGER.to_string()),
        (LABEL_SHARE.to_string(), truncate_dns(share, 63)),
        (LABEL_SHARE_NAMESPACE.to_string(), namespace.to_string()),
    ])
}

/// A Kubernetes quantity that does not parse (the input is kept for the message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("invalid quantity {input:?}: unknown unit {unit:?}")]
    UnknownUnit { input: String, unit: String },
    #[error("invalid quantity {0:?}: expected e.g. 4Mi, 1G, 512")]
    NotANumber(String),
    #[error("invalid quantity {0:?}: out of range")]
    OutOfRange(String),
}

/// Parses a Kubernetes quantity (`4Mi`, `1G`, `512`) into bytes.
pub fn parse_quantity(q: &str) -> Result<u64, QuantityError> {
    let t = q.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1000,
        "M" => 1000u64.pow(2),
        "G" => 1000u64.pow(3),
        "T" => 1000u64.pow(4),
        "P" => 1000u64.pow(5),
        "E" => 1000u64.pow(6),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        _ => {
            return Err(QuantityError::UnknownUnit {
                input: q.to_owned(),
                unit: unit.to_owned(),
            });
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| QuantityError::NotANumber(q.to_owned()))?;
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(QuantityError::OutOfRange(q.to_owned()));
    }
    Ok(bytes as u64)
}

/// Now as RFC 3339 UTC with seconds (`2026-11-25T19:00:00Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("4Mi"), Ok(4 << 20));
        assert_eq!(parse_quantity("1G"), Ok(1_000_000_000));
        assert_eq!(parse_quantity("512"), Ok(512));
        assert_eq!(parse_quantity("1.5Ki"), Ok(1536));
        assert_eq!(
            parse_quantity("4 MB").map_err(|e| e.to_string()),
            Err("invalid quantity \"4 MB\": unknown unit \" MB\"".into())
        );
        assert!(parse_quantity("Mi").is_err());
    }

    #[test]
    fn names_are_bounded_and_distinct() {
        let a = block_volume_name(&"x".repeat(100));
        let b = block_volume_name(&format!("{}y", "x".repeat(99)));
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
        assert_eq!(block_volume_name("fast"), "blocks-fast");
        assert_eq!(pv_name("default", "docs"), "dittofs-default-docs");
        assert_eq!(oneshot_job_name("nightly", 3), "nightly-3");
        assert!(oneshot_job_name(&"g".repeat(80), 12).len() <= 63);
    }
}
