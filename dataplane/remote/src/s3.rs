//! S3 (and S3-compatible) remote store on `aws-sdk-s3`.
//!
//! - Endpoint URL, region, path-style addressing and a key prefix are configurable;
//!   credentials come from the configuration, else `AWS_ACCESS_KEY_ID` /
//!   `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) in the environment.
//! - Checksums are calculated/validated only when an operation requires them: several
//!   S3-compatible servers reject the SDK's default CRC headers. Integrity does not depend
//!   on them: every whole-chunk read is verified against the BLAKE3 hash, every verified
//!   ranged read against the chunk's tree (user metadata `dittofs-tree`, written by `put`)
//!   and the hash.
//! - Every operation has a deadline (`operation_timeout`, connect timeout) and the SDK's
//!   standard retries with backoff; a stalled server yields `Unavailable`.

use crate::{
    ChunkTree, META_HASH, META_TREE, ObjectInfo, Page, RawRange, RemoteError, RemoteStore, Result,
    chunk_key, hash_of_key, normalize_prefix, owner_key, verify,
};
use async_trait::async_trait;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use dittofs_types::ContentHash;
use std::time::Duration;

/// Where and how to reach the bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Empty = `us-east-1`.
    pub region: String,
    /// Empty = AWS; e.g. `http://127.0.0.1:8333` for an S3-compatible server.
    pub endpoint: String,
    pub prefix: String,
    pub force_path_style: bool,
    /// Empty = from the environment.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Deadline of one operation including retries (default 30 s).
    pub operation_timeout: Option<Duration>,
    /// Attempts per operation (default 3).
    pub max_attempts: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct S3Remote {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    identity: String,
}

/// Maps an SDK error: refusals (credentials, bucket) are not transient, the rest is.
fn unavailable<E, R>(what: &str, e: &SdkError<E, R>) -> RemoteError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("unknown");
            let msg = err.message().unwrap_or("");
            match code {
                "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "NoSuchBucket"
                | "AllAccessDisabled"
                | "InvalidBucketName" => RemoteError::Refused(format!("{what}: {code}: {msg}")),
                _ => RemoteError::Unavailable(format!("{what}: {code}: {msg}")),
            }
        }
        SdkError::TimeoutError(_) => RemoteError::Unavailable(format!("{what}: timed out")),
        SdkError::DispatchFailure(d) => RemoteError::Unavailable(format!(
            "{what}: cannot reach the server: {}",
            d.as_connector_error()
                .map(|c| error_chain(c))
                .unwrap_or_else(|| format!("{d:?}"))
        )),
        other => RemoteError::Unavailable(format!("{what}: {other:?}")),
    }
}

/// `error: cause: cause...` (the SDK's Display alone hides the useful part).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = c.source();
    }
    out
}

impl S3Remote {
    pub fn new(cfg: &S3Config) -> Result<Self> {
        if cfg.bucket.is_empty() {
            return Err(RemoteError::Invalid("s3: bucket is required".into()));
        }
        let (id, key, token) = if !cfg.access_key_id.is_empty() {
            (
                cfg.access_key_id.clone(),
                cfg.secret_access_key.clone(),
                None,
            )
        } else {
            match (
                std::env::var("AWS_ACCESS_KEY_ID"),
                std::env::var("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Ok(i), Ok(k)) => (i, k, std::env::var("AWS_SESSION_TOKEN").ok()),
                _ => {
                    return Err(RemoteError::Refused(
                        "s3: no credentials: set access_key_id/secret_access_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".into(),
                    ));
                }
            }
        };
        let region = if cfg.region.is_empty() {
            "us-east-1".to_string()
        } else {
            cfg.region.clone()
        };
        let timeout = cfg.operation_timeout.unwrap_or(Duration::from_secs(30));
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(Credentials::new(id, key, token, None, "dittofs"))
            .force_path_style(cfg.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(timeout)
                    .operation_attempt_timeout(
                        timeout.min(Duration::from_secs(10)).max(timeout / 3),
                    )
                    .connect_timeout(Duration::from_secs(3).min(timeout))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(cfg.max_attempts.unwrap_or(3)));
        if !cfg.endpoint.is_empty() {
            b = b.endpoint_url(cfg.endpoint.clone());
        }
        let prefix = normalize_prefix(&cfg.prefix);
        let identity = format!(
            "s3://{}/{}@{}",
            cfg.bucket,
            prefix,
            if cfg.endpoint.is_empty() {
                "aws"
            } else {
                cfg.endpoint.as_str()
            }
        );
        Ok(S3Remote {
            client: aws_sdk_s3::Client::from_conf(b.build()),
            bucket: cfg.bucket.clone(),
            prefix,
            identity,
        })
    }

    /// Creates the bucket if it does not exist (tests, first-time setup).
    pub async fn ensure_bucket(&self) -> Result<()> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(_) => match self
                .client
                .create_bucket()
                .bucket(&self.bucket)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    let code = e
                        .as_service_error()
                        .and_then(|s| s.code().map(str::to_string));
                    if matches!(
                        code.as_deref(),
                        Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                    ) {
                        Ok(())
                    } else {
                        Err(unavailable("create bucket", &e))
                    }
                }
            },
        }
    }

    /// Writes `data` under the key of `hash` without checking it and without a tree, as an
    /// older writer did (fault injection in tests).
    pub async fn put_unverified(&self, hash: &ContentHash, data: Bytes) -> Result<()> {
        self.put_raw(hash, data, None).await
    }

    /// Writes `data` under the key of `hash` with `tree` as its `dittofs-tree` metadata,
    /// checking neither (fault injection in tests; `put` is the checked write).
    pub async fn put_raw(
        &self,
        hash: &ContentHash,
        data: Bytes,
        tree: Option<String>,
    ) -> Result<()> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(chunk_key(&self.prefix, hash))
            .content_length(data.len() as i64)
            .metadata(META_HASH, hash.to_hex());
        if let Some(t) = tree {
            req = req.metadata(META_TREE, t);
        }
        req.body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| unavailable("put", &e))?;
        Ok(())
    }

    async fn fetch(&self, hash: &ContentHash, range: Option<(u64, u64)>) -> Result<Fetched> {
        let mut req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(chunk_key(&self.prefix, hash));
        if let Some((off, len)) = range {
            req = req.range(format!("bytes={off}-{}", off + len - 1));
        }
        let out = match req.send().await {
            Ok(o) => o,
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    return Err(RemoteError::NotFound(*hash));
                }
                if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) {
                    return Err(RemoteError::Invalid(format!(
                        "range {range:?} is beyond chunk {hash}"
                    )));
                }
                return Err(unavailable("get", &e));
            }
        };
        let declared = out.content_length().and_then(|n| u64::try_from(n).ok());
        let content_range = out.content_range().map(str::to_string);
        let tree = out.metadata().and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(META_TREE))
                .map(|(_, v)| v.clone())
        });
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| RemoteError::Unavailable(format!("get {hash}: body: {e}")))?
            .into_bytes();
        Ok(Fetched {
            data,
            declared,
            content_range,
            tree,
        })
    }
}

/// One GetObject response.
struct Fetched {
    data: Bytes,
    /// Content-Length.
    declared: Option<u64>,
    /// Content-Range (`bytes a-b/total`), for a ranged request.
    content_range: Option<String>,
    /// The `dittofs-tree` metadata.
    tree: Option<String>,
}

/// `(first, last, total)` of a `Content-Range: bytes first-last/total` header.
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let (span, total) = v.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    Some((
        a.trim().parse().ok()?,
        b.trim().parse().ok()?,
        total.trim().parse().ok()?,
    ))
}

#[async_trait]
impl RemoteStore for S3Remote {
    async fn create_if_missing(&self) -> Result<()> {
        self.ensure_bucket().await
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }

    async fn put(&self, hash: &ContentHash, data: Bytes) -> Result<()> {
        let (tree, root) = ChunkTree::compute(&data);
        if root != *hash {
            return Err(RemoteError::Invalid(format!(
                "put: {} bytes hashing to {root} under {hash}",
                data.len()
            )));
        }
        self.put_raw(hash, data, Some(tree.encode())).await
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        let f = self.fetch(hash, None).await?;
        verify(hash, &f.data, f.declared)?;
        Ok(f.data)
    }

    async fn get_range_raw(&self, hash: &ContentHash, offset: u64, len: u64) -> Result<RawRange> {
        if len == 0 {
            return Err(RemoteError::Invalid("empty range".into()));
        }
        let end = offset
            .checked_add(len)
            .ok_or_else(|| RemoteError::Invalid("range overflows".into()))?;
        let f = self.fetch(hash, Some((offset, len))).await?;
        let corrupt = |detail: String| RemoteError::Corrupt {
            hash: *hash,
            detail: format!("range {offset}+{len}: {detail}"),
        };
        let (data, object_len) = match f.content_range.as_deref() {
            Some(cr) => {
                let (first, last, total) = parse_content_range(cr)
                    .ok_or_else(|| corrupt(format!("bad Content-Range {cr:.60?}")))?;
                if end > total {
                    return Err(RemoteError::Invalid(format!(
                        "range {offset}..{end} is beyond the chunk's {total} bytes"
                    )));
                }
                if first != offset || last != end - 1 {
                    return Err(corrupt(format!("the server sent bytes {first}-{last}")));
                }
                (f.data, total)
            }
            // The server ignored the range and sent the whole object.
            None => {
                let total = f.data.len() as u64;
                if end > total {
                    return Err(RemoteError::Invalid(format!(
                        "range {offset}..{end} is beyond the chunk's {total} bytes"
                    )));
                }
                (f.data.slice(offset as usize..end as usize), total)
            }
        };
        if data.len() as u64 != len {
            return Err(corrupt(format!("{} bytes received", data.len())));
        }
        Ok(RawRange {
            data,
            object_len,
            tree: f.tree,
        })
    }

    async fn head(&self, hash: &ContentHash) -> Result<Option<ObjectInfo>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(chunk_key(&self.prefix, hash))
            .send()
            .await
        {
            Ok(o) => Ok(Some(ObjectInfo {
                hash: *hash,
                size: o
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                modified_unix: o.last_modified().map(|t| t.secs()).unwrap_or(0),
            })),
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_not_found())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404)
                {
                    Ok(None)
                } else {
                    Err(unavailable("head", &e))
                }
            }
        }
    }

    async fn delete(&self, hash: &ContentHash) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(chunk_key(&self.prefix, hash))
            .send()
            .await
            .map_err(|e| unavailable("delete", &e))?;
        Ok(())
    }

    async fn get_owner_record(&self) -> Result<Option<Bytes>> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(owner_key(&self.prefix))
            .send()
            .await;
        match got {
            Ok(o) => Ok(Some(
                o.body
                    .collect()
                    .await
                    .map_err(|e| RemoteError::Unavailable(format!("get owner record: {e}")))?
                    .into_bytes(),
            )),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(unavailable("get owner record", &e)),
        }
    }

    async fn put_owner_record(&self, data: Bytes) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(owner_key(&self.prefix))
            .content_length(data.len() as i64)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| unavailable("put owner record", &e))?;
        Ok(())
    }

    async fn list(&self, after: Option<String>, limit: u32) -> Result<Page> {
        let mut req = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}cas/", self.prefix))
            .max_keys(limit.clamp(1, 1000) as i32);
        if let Some(token) = after {
            req = req.continuation_token(token);
        }
        let out = req.send().await.map_err(|e| unavailable("list", &e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                let hash = hash_of_key(&self.prefix, o.key()?)?;
                Some(ObjectInfo {
                    hash,
                    size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                    modified_unix: o.last_modified().map(|t| t.secs()).unwrap_or(0),
                })
            })
            .collect();
        let next = if out.is_truncated() == Some(true) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(Page { objects, next })
    }
}
