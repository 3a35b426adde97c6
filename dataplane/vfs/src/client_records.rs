//! Records of the clients that hold state on a share, kept in the share's metadata
//! store so that they survive a restart (also SIGKILL): after one, a protocol adapter
//! reads them to know which clients may reclaim the state they held (NFSv4: RFC 8881
//! section 8.4.3, RFC 7530 section 9.6.3; an SMB adapter's durable handles would be the
//! same kind of record).
//!
//! The records live in the share's auxiliary key/value space
//! ([`dittofs_metadata::Op::PutAux`]) under the key `b"client/" ++ id`. The core keeps
//! `id` and the value as opaque bytes: what they mean is the adapter's (it prefixes its
//! ids with its protocol so adapters never meet). Every change is one durable
//! transaction of its own; the records are not namespace data (no inode, no Check).
//! They go with the share (`delete_share` clears the auxiliary space).

use crate::error::FsResult;
use crate::fs::Fs;
use dittofs_metadata::{Op, Txn};

/// Key prefix of client records in the auxiliary space.
const PREFIX: &[u8] = b"client/";
/// Records read per scan.
const PAGE: usize = 256;

fn key(id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(PREFIX.len() + id.len());
    k.extend_from_slice(PREFIX);
    k.extend_from_slice(id);
    k
}

impl Fs {
    /// Writes (or replaces) the record of client `id`, durably, before returning.
    pub async fn put_client_record(&self, id: &[u8], value: &[u8]) -> FsResult<()> {
        let mut t = Txn::new(self.share_id());
        t.op(Op::PutAux {
            key: key(id),
            value: value.to_vec(),
        });
        self.commit(t).await
    }

    /// Deletes the record of client `id` (an absent one is fine).
    pub async fn delete_client_record(&self, id: &[u8]) -> FsResult<()> {
        let mut t = Txn::new(self.share_id());
        t.op(Op::DeleteAux { key: key(id) });
        self.commit(t).await
    }

    /// Every client record of the share whose id starts with `prefix`: (id, value),
    /// ascending by id.
    pub async fn client_records(&self, prefix: &[u8]) -> FsResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        let want = key(prefix);
        loop {
            let page = self
                .store()
                .scan_aux(self.share_id(), &want, after.as_deref(), PAGE)
                .await?;
            let Some((last, _)) = page.last() else {
                return Ok(out);
            };
            after = Some(last.clone());
            out.extend(
                page.into_iter()
                    .map(|(k, v)| (k[PREFIX.len()..].to_vec(), v)),
            );
        }
    }
}
