//! NFSv3 directory reading: READDIR and READDIRPLUS (RFC 1813 sections 3.3.16, 3.3.17;
//! codecs and the size-tracking builders in `nfs3::dir`). Cookies 1 and 2 are the
//! synthesised "." and ".."; the core's entries carry cookies from 3 up, and its
//! verifier is checked only past the dots.

use super::{Handled, Target, handle_bytes, target};
use crate::call::CallCtx;
use crate::conv::fattr;
use crate::nfs3::*;
use crate::shared::Shared;
use dittofs_types::Ino;
use dittofs_vfs::{Attr, Credentials, Fs, FsError};

/// Cookies 1 and 2 are "." and ".." (synthesised, as Linux clients expect from NFSv3
/// servers); real entries carry cookies from 3 up.
async fn dot_entries(fs: &Fs, dir: Ino, cookie: u64) -> Result<Vec<(Vec<u8>, Ino, u64)>, FsError> {
    let mut out = Vec::new();
    if cookie == 0 {
        out.push((b".".to_vec(), dir, 1));
    }
    if cookie <= 1 {
        let parent = fs.lookup(&Credentials::root(), dir, b"..").await?.ino;
        out.push((b"..".to_vec(), parent, 2));
    }
    Ok(out)
}

/// One page of a directory for READDIR/READDIRPLUS: the resolved directory, its
/// attributes, the verifier to return, the entries (dots first) and whether the page
/// reaches the end. Errors carry the directory attributes when they could be read.
struct DirPage {
    t: Target,
    dir_attr: Option<Attr>,
    verifier: u64,
    entries: Vec<(Vec<u8>, Ino, u64)>,
    eof: bool,
}

async fn dir_page(
    shared: &Shared,
    ctx: &CallCtx,
    dir: &NfsFh3,
    cookie: u64,
    cookieverf: CookieVerf3,
    max: usize,
) -> Result<DirPage, (NfsStat3, Option<Attr>)> {
    let t = target(shared, ctx, dir)
        .await
        .map_err(|e| (NfsStat3::from(&e), None))?;
    let dir_attr = t.attr().await;
    // Cookies up to 2 are the synthesised dots: the core starts after them, with no
    // verifier to check yet.
    let verf = if cookie <= 2 {
        0
    } else {
        u64::from_be_bytes(cookieverf)
    };
    let page = match t.fs.readdir(&t.cred, t.ino, cookie.max(2), verf, max).await {
        Ok(p) => p,
        Err(e) => return Err((NfsStat3::from(&e), dir_attr)),
    };
    let mut entries = match dot_entries(&t.fs, t.ino, cookie).await {
        Ok(d) => d,
        Err(e) => return Err((NfsStat3::from(&e), dir_attr)),
    };
    entries.extend(page.entries.into_iter().map(|e| (e.name, e.ino, e.cookie)));
    Ok(DirPage {
        t,
        dir_attr,
        verifier: page.verifier,
        entries,
        eof: page.eof,
    })
}

/// A failed READDIR/READDIRPLUS with the directory's attributes when they are known.
fn fail<T>(st: NfsStat3, dir_attr: Option<&Attr>) -> Res3<T, ReaddirResFail> {
    let dir_attributes = dir_attr.map(fattr);
    Res3::Fail(st, ReaddirResFail { dir_attributes })
}

pub(super) async fn readdir(
    shared: &Shared,
    ctx: &CallCtx,
    a: &ReaddirArgs,
) -> Handled<ReaddirRes> {
    let max = ((a.count as usize) / 24).clamp(8, 4096);
    let p = dir_page(shared, ctx, &a.dir, a.cookie, a.cookieverf, max)
        .await
        .map_err(|(st, da)| fail(st, da.as_ref()))?;
    let dir_attributes = p.dir_attr.as_ref().map(fattr);
    let mut b = ReaddirBuilder::new(dir_attributes, p.verifier.to_be_bytes(), a.count);
    let mut all_fit = true;
    for (name, ino, cookie) in p.entries {
        let name = Filename3(name);
        if !b.try_push(Entry3 {
            fileid: ino.0,
            name,
            cookie,
        }) {
            all_fit = false;
            break;
        }
    }
    if b.is_empty() {
        return Err(fail(NfsStat3::TooSmall, p.dir_attr.as_ref()));
    }
    Ok(Res3::Ok(b.finish(all_fit && p.eof)))
}

pub(super) async fn readdirplus(
    shared: &Shared,
    ctx: &CallCtx,
    a: &ReaddirplusArgs,
) -> Handled<ReaddirplusRes> {
    let max = ((a.dircount as usize) / 16).clamp(8, 1024);
    let p = dir_page(shared, ctx, &a.dir, a.cookie, a.cookieverf, max)
        .await
        .map_err(|(st, da)| fail(st, da.as_ref()))?;
    let dir_attributes = p.dir_attr.as_ref().map(fattr);
    let verifier = p.verifier.to_be_bytes();
    let mut b = ReaddirplusBuilder::new(dir_attributes, verifier, a.dircount, a.maxcount);
    let mut all_fit = true;
    for (name, ino, cookie) in p.entries {
        // An entry removed since the page was read is sent without attributes.
        let (attrs, fh) = match p.t.fs.attr_and_handle(ino).await {
            Ok((attr, h)) => (Some(fattr(&attr)), Some(handle_bytes(h))),
            Err(_) => (None, None),
        };
        let e = Entryplus3 {
            fileid: ino.0,
            name: Filename3(name),
            cookie,
            name_attributes: attrs,
            name_handle: fh,
        };
        if !b.try_push(e) {
            all_fit = false;
            break;
        }
    }
    if b.is_empty() {
        return Err(fail(NfsStat3::TooSmall, p.dir_attr.as_ref()));
    }
    Ok(Res3::Ok(b.finish(all_fit && p.eof)))
}
