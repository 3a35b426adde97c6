//! The pseudo file system (RFC 8881 section 7.3): read-only directories joining every
//! share at its export path, so that `server:/` shows the exports and `server:/export`
//! reaches the share of that name.
//!
//! Invariants: a pseudo node is a path that is `/` or a proper prefix, in whole
//! components, of some share's export path; it is computed from the share registry on
//! every use, so a share added or removed while serving appears or disappears at once.
//! A pseudo node's handle is [`MAGIC`] followed by its path: it never parses as a
//! share's handle (whose first byte is its format version, 1), and one whose path is no
//! longer a node is stale.

use crate::nfs4::types::{Fh4, NFS4_FHSIZE};
use dittofs_vfs::{Fs, ShareRegistry};
use std::sync::Arc;

/// First bytes of a pseudo node's handle.
pub(crate) const MAGIC: &[u8] = b"\xfeDFS4PS\x01";

/// What a name in a pseudo directory leads to.
#[derive(Clone)]
pub(crate) enum Child {
    Pseudo(Vec<u8>),
    Share(Arc<Fs>),
}

/// The components of a path.
fn comps(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

/// The export path of a share: its name as an absolute path.
pub(crate) fn export_path(fs: &Fs) -> Vec<u8> {
    join(&comps(fs.name().as_bytes()))
}

fn join(cs: &[&[u8]]) -> Vec<u8> {
    let mut p = Vec::new();
    for c in cs {
        p.push(b'/');
        p.extend_from_slice(c);
    }
    if p.is_empty() {
        p.push(b'/');
    }
    p
}

/// The share exported exactly at `path`.
pub(crate) fn share_at(reg: &ShareRegistry, path: &[u8]) -> Option<Arc<Fs>> {
    reg.list().into_iter().find(|fs| export_path(fs) == path)
}

/// Whether `path` is a pseudo node (and not a share's own path).
pub(crate) fn is_node(reg: &ShareRegistry, path: &[u8]) -> bool {
    if share_at(reg, path).is_some() {
        return false;
    }
    let want = comps(path);
    want.is_empty()
        || reg.list().iter().any(|fs| {
            let have = export_path(fs);
            let have = comps(&have);
            have.len() > want.len() && have[..want.len()] == want[..]
        })
}

/// The entries of the pseudo directory `path`, sorted by name.
pub(crate) fn children(reg: &ShareRegistry, path: &[u8]) -> Vec<(Vec<u8>, Child)> {
    let want = comps(path);
    let mut names: Vec<Vec<u8>> = Vec::new();
    for fs in reg.list() {
        let p = export_path(&fs);
        let have = comps(&p);
        if have.len() > want.len() && have[..want.len()] == want[..] {
            names.push(have[want.len()].to_vec());
        }
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| lookup(reg, path, &n).map(|c| (n, c)))
        .collect()
}

/// `name` in the pseudo directory `path`.
pub(crate) fn lookup(reg: &ShareRegistry, path: &[u8], name: &[u8]) -> Option<Child> {
    let mut cs = comps(path);
    cs.push(name);
    let child = join(&cs);
    if let Some(fs) = share_at(reg, &child) {
        return Some(Child::Share(fs));
    }
    is_node(reg, &child).then_some(Child::Pseudo(child))
}

/// The parent of a path (None for `/`).
pub(crate) fn parent(path: &[u8]) -> Option<Vec<u8>> {
    let cs = comps(path);
    (!cs.is_empty()).then(|| join(&cs[..cs.len() - 1]))
}

/// The handle of pseudo node `path` (None when the path is too long for a handle).
pub(crate) fn handle(path: &[u8]) -> Option<Fh4> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(path);
    (h.len() <= NFS4_FHSIZE).then_some(Fh4(h))
}

/// The path in a pseudo node's handle (None: not a pseudo handle).
pub(crate) fn parse_handle(h: &[u8]) -> Option<Vec<u8>> {
    h.strip_prefix(MAGIC).map(<[u8]>::to_vec)
}

/// The file ID of pseudo node `path` (FNV-1a of the path, never 0).
pub(crate) fn fileid(path: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_handles() {
        assert_eq!(join(&comps(b"export")), b"/export");
        assert_eq!(join(&comps(b"//a//b/")), b"/a/b");
        assert_eq!(parent(b"/a/b"), Some(b"/a".to_vec()));
        assert_eq!(parent(b"/a"), Some(b"/".to_vec()));
        assert_eq!(parent(b"/"), None);
        let h = handle(b"/a").unwrap();
        assert_eq!(parse_handle(&h.0), Some(b"/a".to_vec()));
        assert_eq!(parse_handle(&[1, 2, 3]), None);
        assert!(handle(&[b'a'; 200]).is_none());
        assert_ne!(fileid(b"/"), fileid(b"/a"));
    }
}
