//! The DittoFS Kubernetes operator.
//!
//! So far: the custom resource types of group `dittofs.io`, version `v1alpha1`
//! ([`crd`]), from which `crdgen` writes `crds/*.yaml`. The controller (reconciling
//! MetadataStores into data-plane StatefulSets configured over the gRPC control API,
//! Shares into PersistentVolumes, GCJobs into CronJobs) is the next step.

// The KubeSchema derive re-declares the annotated spec structs inside a generated module,
// which trips `unreachable_pub` on types that are in fact exported.
#[allow(unreachable_pub)]
pub mod crd;
