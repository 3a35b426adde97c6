//! The operator's client of a data-plane pod's control API (`dittofs.control.v1`).
//!
//! Every call has a deadline (`--call-timeout`): a hung pod costs one timeout, never a
//! stuck reconcile. Pod addresses come from a [`PodAddresses`] policy so that tests can point
//! the operator at a data plane running on loopback instead of a (fake) pod IP.

use crate::error::{Error, Result};
use dittofs_proto::v1 as pb;
use dittofs_proto::v1::control_service_client::ControlServiceClient;
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

/// How the operator finds the control API of a data-plane pod.
#[derive(Clone, Debug, Default)]
pub enum PodAddresses {
    /// `status.podIP` and the group's gRPC port (in-cluster).
    #[default]
    PodIp,
    /// Fixed addresses per MetadataStore (`namespace/name` -> `host:port`), for tests and
    /// development with a data plane outside the cluster. A group without an entry is
    /// treated as unreachable: its pods are never dialled.
    Fixed(BTreeMap<String, String>),
}

/// A `--pod-address` value that is not `NAMESPACE/NAME=HOST:PORT` (kept as given).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--pod-address {0:?}: expected NAMESPACE/NAME=HOST:PORT")]
pub struct BadPodAddress(pub String);

impl PodAddresses {
    /// Parses `--pod-address ns/name=host:port` values.
    pub fn fixed(entries: &[String]) -> std::result::Result<Self, BadPodAddress> {
        let mut map = BTreeMap::new();
        for e in entries {
            let bad = || BadPodAddress(e.clone());
            let (key, addr) = e.split_once('=').ok_or_else(bad)?;
            if !key.contains('/') || !addr.contains(':') {
                return Err(bad());
            }
            map.insert(key.to_string(), addr.to_string());
        }
        Ok(PodAddresses::Fixed(map))
    }

    /// The `host:port` of `pod` of MetadataStore `ns/name`, if it can be dialled.
    pub fn resolve(&self, ns: &str, name: &str, pod: &Pod, grpc_port: i32) -> Option<String> {
        match self {
            PodAddresses::PodIp => pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_ref())
                .filter(|ip| !ip.is_empty())
                .map(|ip| {
                    if ip.contains(':') {
                        format!("[{ip}]:{grpc_port}")
                    } else {
                        format!("{ip}:{grpc_port}")
                    }
                }),
            PodAddresses::Fixed(m) => m.get(&format!("{ns}/{name}")).cloned(),
        }
    }
}

/// A connection to one pod.
pub struct DataPlane {
    client: ControlServiceClient<Channel>,
    auth: MetadataValue<tonic::metadata::Ascii>,
    addr: String,
    timeout: Duration,
}

impl DataPlane {
    pub async fn connect(addr: &str, token: &str, timeout: Duration) -> Result<Self> {
        let err = |msg: String| Error::DataPlane {
            addr: addr.to_string(),
            msg,
        };
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| err(format!("invalid address: {e}")))?
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true);
        let channel = tokio::time::timeout(timeout, endpoint.connect())
            .await
            .map_err(|_| err("timed out connecting".into()))?
            .map_err(|e| err(format!("cannot connect: {e}")))?;
        let mut auth: MetadataValue<tonic::metadata::Ascii> = format!("Bearer {token}")
            .parse()
            .map_err(|_| err("the control token is not a valid header value".into()))?;
        auth.set_sensitive(true);
        Ok(DataPlane {
            client: ControlServiceClient::new(channel),
            auth,
            addr: addr.into(),
            timeout,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.timeout);
        r.metadata_mut().insert("authorization", self.auth.clone());
        r
    }

    fn status_err(&self, s: tonic::Status) -> Error {
        use tonic::Code::*;
        match s.code() {
            InvalidArgument | FailedPrecondition | Unimplemented | NotFound | AlreadyExists
            | OutOfRange => Error::Rejected {
                addr: self.addr.clone(),
                msg: s.message().to_string(),
            },
            _ => Error::DataPlane {
                addr: self.addr.clone(),
                msg: format!("{:?}: {}", s.code(), s.message()),
            },
        }
    }

    /// Would the pod accept `state`? (A dry run: nothing changes.)
    pub async fn check(&mut self, state: &pb::DesiredState) -> Result<()> {
        let mut c = self.client.clone();
        let req = self.request(pb::ApplyConfigRequest {
            state: Some(state.clone()),
            dry_run: true,
        });
        self.within(c.apply_config(req))
            .await?
            .map(|_| ())
            .map_err(|s| self.status_err(s))
    }

    async fn within<T>(
        &self,
        fut: impl std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<std::result::Result<T, tonic::Status>> {
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(Error::DataPlane {
                addr: self.addr.clone(),
                msg: "call timed out".into(),
            }),
            Ok(r) => Ok(r.map(tonic::Response::into_inner)),
        }
    }

    /// Makes the pod serve `state` (generation chosen by the pod). Unless `force`, a dry
    /// run first: when nothing would change, nothing is applied (a dry run cannot see an
    /// identity change: `force` pushes one). Returns (changes applied, pod generation).
    pub async fn apply(
        &mut self,
        state: &pb::DesiredState,
        force: bool,
    ) -> Result<(Vec<pb::Change>, u64)> {
        let mut c = self.client.clone();
        if !force {
            let req = self.request(pb::ApplyConfigRequest {
                state: Some(state.clone()),
                dry_run: true,
            });
            let dry = self
                .within(c.apply_config(req))
                .await?
                .map_err(|s| self.status_err(s))?;
            if dry.changes.is_empty() {
                return Ok((vec![], dry.applied_generation));
            }
        }
        let req = self.request(pb::ApplyConfigRequest {
            state: Some(state.clone()),
            dry_run: false,
        });
        let done = self
            .within(c.apply_config(req))
            .await?
            .map_err(|s| self.status_err(s))?;
        Ok((done.changes, done.applied_generation))
    }

    /// The last GC run of the store behind `share` (None: none yet).
    pub async fn gc_status(&mut self, share: &str) -> Result<Option<pb::GcRunSummary>> {
        let mut c = self.client.clone();
        let req = self.request(pb::GcStatusRequest {
            share: share.into(),
        });
        match self.within(c.gc_status(req)).await? {
            Ok(s) => Ok(Some(s)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(self.status_err(s)),
        }
    }

    /// The last audit of `share` (None: none yet).
    pub async fn last_audit(&mut self, share: &str) -> Result<Option<pb::AuditReport>> {
        let mut c = self.client.clone();
        let req = self.request(pb::LastAuditRequest {
            share: share.into(),
        });
        match self.within(c.last_audit(req)).await? {
            Ok(s) => Ok(Some(s)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(self.status_err(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_addresses_never_fall_back_to_pod_ips() {
        let pod = Pod {
            status: Some(k8s_openapi::api::core::v1::PodStatus {
                pod_ip: Some("10.244.0.5".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            PodAddresses::PodIp
                .resolve("ns", "m", &pod, 9000)
                .as_deref(),
            Some("10.244.0.5:9000")
        );
        let f = PodAddresses::fixed(&["ns/m=127.0.0.1:23001".into()]).unwrap();
        assert_eq!(
            f.resolve("ns", "m", &pod, 9000).as_deref(),
            Some("127.0.0.1:23001")
        );
        assert_eq!(f.resolve("ns", "other", &pod, 9000), None);
        assert!(PodAddresses::fixed(&["m=127.0.0.1:1".into()]).is_err());
        assert_eq!(
            PodAddresses::fixed(&["ns/m".into()]).err(),
            Some(BadPodAddress("ns/m".into()))
        );
    }
}
