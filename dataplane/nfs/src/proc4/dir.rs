//! READDIR (RFC 8881 section 18.23; codec in `nfs4::dir`).
//!
//! Cookies: 0 starts the listing, 1 and 2 are reserved (NFS4ERR_BAD_COOKIE); a share
//! directory's entries carry the core's cookies (from 3 up, stable across calls, checked
//! against the cookie verifier after the first page); a pseudo directory's entries are
//! numbered from 3 in name order. "." and ".." are never listed. The reply holds as many
//! entries as fit in `maxcount` (each with the attributes asked for, or only
//! `rdattr_error` when they cannot be read); not even one is NFS4ERR_TOOSMALL.

use super::attr::{AttrCtx, ctx, from_attr, pseudo_source};
use super::pseudo::{self, Child};
use super::{Compound, Cur, FileRef, MAX_MSG, OpResult};
use crate::nfs4::Nfs4Status;
use crate::nfs4::dir::{Entry4, ReaddirArgs};
use crate::nfs4::fattr::{Fattr4, FsStats4, encode_attrs, rdattr_error_only};
use crate::nfs4::types::{Bitmap4, Component4, Fh4, Verifier4};
use crate::xdr::{XdrEncode, XdrWrite};
use dittofs_types::Ino;
use dittofs_vfs::Fs;

/// The most entries read from the core for one reply.
const MAX_ENTRIES: usize = 1024;
/// Bytes of a reply besides its entries: verifier, end of list, eof.
const FIXED: usize = 8 + 4 + 4;

/// A reply under construction, bounded by the client's `maxcount`.
struct Builder {
    buf: Vec<u8>,
    max: usize,
    n: usize,
    full: bool,
}

impl Builder {
    fn new(verf: Verifier4, maxcount: u32) -> Builder {
        let mut buf = Vec::with_capacity(4096);
        verf.encode(&mut buf);
        Builder {
            buf,
            max: (maxcount.min(MAX_MSG)) as usize,
            n: 0,
            full: false,
        }
    }

    /// Adds an entry if it fits; false (and full) when it does not.
    fn push(&mut self, e: &Entry4) -> bool {
        let mut one = Vec::with_capacity(128);
        one.put_xdr_bool(true);
        e.encode(&mut one);
        if self.buf.len() + one.len() + FIXED - 8 > self.max {
            self.full = true;
            return false;
        }
        self.buf.extend_from_slice(&one);
        self.n += 1;
        true
    }

    fn finish(mut self, eof: bool) -> OpResult {
        if self.n == 0 && self.full {
            return Err(Nfs4Status::TooSmall.into());
        }
        self.buf.put_xdr_bool(false);
        self.buf.put_xdr_bool(eof && !self.full);
        Ok(self.buf)
    }
}

/// The attributes of an object of a share for a listing.
async fn entry_attrs(fs: &Fs, ino: Ino, mask: &Bitmap4, cx: &AttrCtx) -> Fattr4 {
    match fs.attr_and_handle(ino).await {
        Ok((at, h)) => {
            let src = from_attr(fs, &at, Fh4(h.encode().to_vec()), cx, FsStats4::default());
            encode_attrs(mask, &src)
        }
        Err(e) => rdattr_error_only(mask, Nfs4Status::from(&e)),
    }
}

async fn list_share(f: &FileRef, a: &ReaddirArgs, cx: &AttrCtx) -> OpResult {
    let verf = if a.cookie == 0 {
        0
    } else {
        u64::from_be_bytes(a.cookieverf)
    };
    let want = (a.maxcount as usize / 32).clamp(1, MAX_ENTRIES);
    let page =
        f.fs.readdir(&f.cred, f.ino, a.cookie.max(2), verf, want)
            .await?;
    let mut b = Builder::new(page.verifier.to_be_bytes(), a.maxcount);
    for e in &page.entries {
        let attrs = entry_attrs(&f.fs, e.ino, &a.attr_request, cx).await;
        let entry = Entry4 {
            cookie: e.cookie,
            name: Component4::from_name(&e.name),
            attrs,
        };
        if !b.push(&entry) {
            break;
        }
    }
    b.finish(page.eof)
}

async fn list_pseudo(c: &Compound<'_>, path: &[u8], a: &ReaddirArgs) -> OpResult {
    let mut b = Builder::new([0; 8], a.maxcount);
    let cx = ctx(c);
    let kids = pseudo::children(&c.shared.registry, path);
    for (i, (name, child)) in kids.iter().enumerate() {
        let cookie = i as u64 + 3;
        if cookie <= a.cookie {
            continue;
        }
        let attrs = match child {
            Child::Pseudo(p) => encode_attrs(&a.attr_request, &pseudo_source(c, &cx, p)),
            Child::Share(fs) => entry_attrs(fs, Ino::ROOT, &a.attr_request, &cx).await,
        };
        let entry = Entry4 {
            cookie,
            name: Component4::from_name(name),
            attrs,
        };
        if !b.push(&entry) {
            break;
        }
    }
    b.finish(true)
}

pub(super) async fn readdir(c: &mut Compound<'_>, a: &ReaddirArgs) -> OpResult {
    if a.cookie == 1 || a.cookie == 2 {
        return Err(Nfs4Status::BadCookie.into());
    }
    match c.cur()?.clone() {
        Cur::Pseudo(p) => list_pseudo(c, &p, a).await,
        Cur::File(f) => list_share(&f, a, &ctx(c)).await,
    }
}
