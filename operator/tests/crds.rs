//! The checked-in `crds/*.yaml` are exactly what the Rust types generate (CI fails on
//! drift: regenerate with `cargo run -p dittofs-operator --bin crdgen`), and every CRD has
//! what users and the controller rely on: status subresource, Ready printer column,
//! CEL rules, bounded strings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dittofs_operator::crd;
use std::path::Path;

/// The checkout's crate directory: the one the test runs in (cargo and nextest say so
/// at run time), not where the binary was built (a cached build from another checkout
/// keeps the path it was compiled at).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(),
        Into::into,
    )
}

fn crds_dirs() -> Vec<std::path::PathBuf> {
    crd::OUTPUT_DIRS
        .iter()
        .map(|d| manifest_dir().join("..").join(d))
        .collect()
}

#[test]
fn checked_in_yaml_matches_the_types() {
    let mut stale = Vec::new();
    for (file, c) in crd::all() {
        let want = crd::to_yaml(&c).unwrap();
        for dir in crds_dirs() {
            let have = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            if have != want {
                stale.push(dir.join(file).display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "crds/ or charts/dittofs/crds/ is out of date for {stale:?}: run `cargo run -p dittofs-operator --bin crdgen`"
    );
}

#[test]
fn every_crd_has_status_printer_columns_and_validations() {
    for (file, c) in crd::all() {
        assert_eq!(c.spec.group, crd::GROUP, "{file}");
        assert_eq!(c.spec.versions.len(), 1);
        let v = &c.spec.versions[0];
        assert_eq!(v.name, crd::VERSION);
        assert!(v.served && v.storage);
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{file}: no status subresource"
        );
        let cols = v.additional_printer_columns.as_ref().unwrap();
        assert!(cols.iter().any(|c| c.name == "Ready"), "{file}");
        assert!(cols.iter().any(|c| c.name == "Age"), "{file}");
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains("x-kubernetes-validations"),
            "{file}: no CEL rules"
        );
        assert!(json.contains("maxLength"), "{file}: unbounded strings");
    }
}

#[test]
fn samples_round_trip_through_the_types() {
    let share: crd::Share = serde_yaml::from_str(
        "apiVersion: dittofs.io/v1alpha1\nkind: Share\nmetadata: {name: docs, namespace: dittofs}\n\
         spec: {path: /docs, metadataStoreRef: meta, localBlockStoreRef: disk,\n\
         trash: {enabled: true, retentionDays: 30, exclude: ['*.tmp']},\n\
         persistentVolumeClaim: {namespace: apps}}\n",
    )
    .unwrap();
    assert_eq!(share.spec.protocols, vec![crd::Protocol::Nfs]);
    assert_eq!(share.spec.squash, crd::Squash::RootToAnonymous);
    assert_eq!((share.spec.anon_uid, share.spec.anon_gid), (65534, 65534));
    let back: crd::Share = serde_yaml::from_str(&serde_yaml::to_string(&share).unwrap()).unwrap();
    assert_eq!(back.spec, share.spec);
    let job: crd::GCJob = serde_yaml::from_str(
        "apiVersion: dittofs.io/v1alpha1\nkind: GCJob\nmetadata: {name: nightly}\n\
         spec: {shareRef: docs, operation: gc, schedule: '0 3 * * *', gracePeriod: 1h}\n",
    )
    .unwrap();
    assert_eq!(job.spec.operation, crd::GcOperation::Gc);
    assert!(
        serde_yaml::from_str::<crd::GCJob>(
            "apiVersion: dittofs.io/v1alpha1\nkind: GCJob\nmetadata: {name: x}\nspec: {shareRef: d, operation: explode}\n"
        )
        .is_err()
    );
}
