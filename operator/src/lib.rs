//! The DittoFS Kubernetes operator (docs/design.md, "Deployment on Kubernetes";
//! docs/operator.md).
//!
//! | module | role |
//! |---|---|
//! | [`crd`] | the custom resources of `dittofs.io/v1alpha1` (`crdgen` writes `crds/*.yaml`) |
//! | [`names`] | object names, labels, quantities |
//! | [`desired`] | CRs -> the `DesiredState` of one server group (pure) |
//! | [`identity`] | users, groups (passwords from Secrets) and Share permissions of a group's desired state (pure) |
//! | [`resources`] | CRs -> StatefulSet, Service, Secret, PV, PVC, Job, CronJob documents (pure) |
//! | [`dataplane`] | gRPC client of a pod's control API; pod address policy |
//! | [`metadatastore`], [`share`], [`blockstore`], [`gcjob`] | one reconciler per kind |
//! | [`controller`] | the four kube-runtime controllers, their watches, metrics endpoint |
//! | [`context`], [`error`] | shared context (client, events, metrics, conditions), the error enum |

// The KubeSchema derive re-declares the annotated spec structs inside a generated module,
// which trips `unreachable_pub` on types that are in fact exported.
#[allow(unreachable_pub)]
pub mod crd;

/// Installs the process-wide TLS crypto provider (ring) used by the Kubernetes client.
/// Needed because rustls cannot choose one by itself when a build enables more than one
/// provider, which happens in workspace builds (aws-sdk-s3 of the data plane brings
/// aws-lc-rs). Idempotent; call before creating a `kube::Client`.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub mod blockstore;
pub mod context;
pub mod controller;
pub mod dataplane;
pub mod desired;
pub mod error;
pub mod gcjob;
pub mod identity;
pub mod metadatastore;
pub mod names;
pub mod resources;
pub mod share;
