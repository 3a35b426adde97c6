//! NFSv3 directory reading (RFC 1813 sections 3.3.16 READDIR, 3.3.17 READDIRPLUS).
//!
//! Entries are sent as XDR optional-data chains (`entry3 *nextentry`, RFC 4506
//! section 4.19); here they are plain vectors. [`ReaddirBuilder`] and
//! [`ReaddirplusBuilder`] let the server add entries one at a time while tracking the
//! encoded size against the client's `count` (READDIR) or `dircount`/`maxcount`
//! (READDIRPLUS), refusing an entry that would not fit.

use bytes::BufMut;

use super::types::{
    CookieVerf3, Filename3, NfsFh3, PostOpAttr, PostOpFh3, Res3, post_op_attr_len, post_op_fh3_len,
};
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrResult, XdrWrite, opaque_len, xdr_struct};

xdr_struct! {
    /// `READDIR3args` (RFC 1813 section 3.3.16).
    pub struct ReaddirArgs {
        /// Directory to read.
        pub dir: NfsFh3,
        /// Resume after this cookie (0 = start).
        pub cookie: u64,
        /// Verifier returned with `cookie` (zero with cookie 0).
        pub cookieverf: CookieVerf3,
        /// Maximum size in bytes of the `READDIR3resok` structure.
        pub count: u32,
    }
}

xdr_struct! {
    /// `entry3` (RFC 1813 section 3.3.16), without its `nextentry` link.
    pub struct Entry3 {
        /// File id.
        pub fileid: u64,
        /// Entry name.
        pub name: Filename3,
        /// Cookie to resume after this entry.
        pub cookie: u64,
    }
}

impl Entry3 {
    /// Encoded size including the preceding `value_follows` boolean.
    pub fn xdr_len(&self) -> usize {
        4 + 8 + opaque_len(self.name.0.len()) + 8
    }
}

/// `READDIR3resok` and `READDIRPLUS3resok` (RFC 1813 sections 3.3.16, 3.3.17):
/// `dirlist3` / `dirlistplus3` flattened, over their entry type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirListOk<E> {
    /// Attributes of the directory.
    pub dir_attributes: PostOpAttr,
    /// Cookie verifier.
    pub cookieverf: CookieVerf3,
    /// Entries, in order.
    pub entries: Vec<E>,
    /// True when the last entry is the end of the directory.
    pub eof: bool,
}

impl<E: XdrEncode> XdrEncode for DirListOk<E> {
    fn encode<B: BufMut>(&self, out: &mut B) {
        self.dir_attributes.encode(out);
        self.cookieverf.encode(out);
        out.put_xdr_list(&self.entries);
        out.put_xdr_bool(self.eof);
    }
}

impl<E: XdrDecode> XdrDecode for DirListOk<E> {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self {
            dir_attributes: PostOpAttr::decode(dec)?,
            cookieverf: CookieVerf3::decode(dec)?,
            entries: dec.list(usize::MAX, E::decode)?,
            eof: dec.bool()?,
        })
    }
}

/// `READDIR3resok` (RFC 1813 section 3.3.16).
pub type ReaddirResOk = DirListOk<Entry3>;

xdr_struct! {
    /// `READDIR3resfail` (RFC 1813 section 3.3.16).
    #[derive(Default)]
    pub struct ReaddirResFail {
        /// Attributes of the directory.
        pub dir_attributes: PostOpAttr,
    }
}

/// `READDIR3res` (RFC 1813 section 3.3.16).
pub type ReaddirRes = Res3<ReaddirResOk, ReaddirResFail>;

/// Size of the `nfsstat3` status word plus the two trailing words of a `dirlist3`
/// (end-of-list marker and `eof`), accounted in every builder.
const FRAME_OVERHEAD: usize = 4 + 4 + 4;

/// An entry of a directory listing, as the builders account for it.
pub trait DirListEntry {
    /// Encoded size including the preceding `value_follows` boolean.
    fn list_len(&self) -> usize;
    /// The part counted against READDIRPLUS's `dircount` (fileid, name, cookie).
    fn dir_part_len(&self) -> usize;
}

impl DirListEntry for Entry3 {
    fn list_len(&self) -> usize {
        self.xdr_len()
    }

    fn dir_part_len(&self) -> usize {
        self.xdr_len()
    }
}

/// Incrementally builds a [`DirListOk`] bounded by the client's limits: the whole reply
/// (status word included) by `maxcount` (READDIR's `count`), and for READDIRPLUS also
/// the directory information by `dircount`.
///
/// The accounted size is the full encoded reply including the status word, which is
/// slightly conservative with respect to the RFC's "size of READDIR3resok".
#[derive(Debug, Clone)]
pub struct DirListBuilder<E> {
    res: DirListOk<E>,
    size: usize,
    dir_size: usize,
    maxcount: usize,
    dircount: usize,
}

/// Builds a [`ReaddirResOk`] bounded by the client's `count`.
pub type ReaddirBuilder = DirListBuilder<Entry3>;

impl ReaddirBuilder {
    /// Start a reply for a request whose `count` is `count`.
    pub fn new(dir_attributes: PostOpAttr, cookieverf: CookieVerf3, count: u32) -> Self {
        Self::with_limits(dir_attributes, cookieverf, count as usize, usize::MAX)
    }
}

impl<E: DirListEntry> DirListBuilder<E> {
    fn with_limits(
        dir_attributes: PostOpAttr,
        cookieverf: CookieVerf3,
        maxcount: usize,
        dircount: usize,
    ) -> Self {
        let size = FRAME_OVERHEAD + post_op_attr_len(&dir_attributes) + 8;
        Self {
            res: DirListOk {
                dir_attributes,
                cookieverf,
                entries: Vec::new(),
                eof: false,
            },
            size,
            dir_size: 0,
            maxcount,
            dircount,
        }
    }

    /// Whether `entry` would fit in the limits.
    pub fn fits(&self, entry: &E) -> bool {
        self.size + entry.list_len() <= self.maxcount
            && self.dir_size.saturating_add(entry.dir_part_len()) <= self.dircount
    }

    /// Add `entry` and return true, or return false (dropping it) if it would make the
    /// reply exceed a limit. Use [`DirListBuilder::fits`] first to keep the entry.
    #[must_use = "a false return means the reply is full"]
    pub fn try_push(&mut self, entry: E) -> bool {
        if !self.fits(&entry) {
            return false;
        }
        self.size += entry.list_len();
        self.dir_size += entry.dir_part_len();
        self.res.entries.push(entry);
        true
    }

    /// Number of entries added.
    pub fn len(&self) -> usize {
        self.res.entries.len()
    }

    /// True when no entry has been added (a reply with no entry and no eof should be
    /// NFS3ERR_TOOSMALL).
    pub fn is_empty(&self) -> bool {
        self.res.entries.is_empty()
    }

    /// Encoded size of the reply so far (status included).
    pub fn encoded_len(&self) -> usize {
        self.size
    }

    /// Directory-information bytes used so far (counted against `dircount`).
    pub fn dir_info_len(&self) -> usize {
        self.dir_size
    }

    /// Finish the reply.
    pub fn finish(mut self, eof: bool) -> DirListOk<E> {
        self.res.eof = eof;
        self.res
    }
}

xdr_struct! {
    /// `READDIRPLUS3args` (RFC 1813 section 3.3.17).
    pub struct ReaddirplusArgs {
        /// Directory to read.
        pub dir: NfsFh3,
        /// Resume after this cookie (0 = start).
        pub cookie: u64,
        /// Verifier returned with `cookie`.
        pub cookieverf: CookieVerf3,
        /// Maximum bytes of directory information (fileid, name, cookie only).
        pub dircount: u32,
        /// Maximum size in bytes of the `READDIRPLUS3resok` structure.
        pub maxcount: u32,
    }
}

xdr_struct! {
    /// `entryplus3` (RFC 1813 section 3.3.17), without its `nextentry` link.
    pub struct Entryplus3 {
        /// File id.
        pub fileid: u64,
        /// Entry name.
        pub name: Filename3,
        /// Cookie to resume after this entry.
        pub cookie: u64,
        /// Attributes of the entry.
        pub name_attributes: PostOpAttr,
        /// Handle of the entry.
        pub name_handle: PostOpFh3,
    }
}

impl Entryplus3 {
    /// Encoded size including the preceding `value_follows` boolean.
    pub fn xdr_len(&self) -> usize {
        self.dir_info_len()
            + post_op_attr_len(&self.name_attributes)
            + post_op_fh3_len(&self.name_handle)
    }

    /// The part counted against `dircount`: like an `entry3` (link, fileid, name, cookie).
    pub fn dir_info_len(&self) -> usize {
        4 + 8 + opaque_len(self.name.0.len()) + 8
    }
}

impl DirListEntry for Entryplus3 {
    fn list_len(&self) -> usize {
        self.xdr_len()
    }

    fn dir_part_len(&self) -> usize {
        self.dir_info_len()
    }
}

/// `READDIRPLUS3resok` (RFC 1813 section 3.3.17).
pub type ReaddirplusResOk = DirListOk<Entryplus3>;

/// `READDIRPLUS3resfail` (RFC 1813 section 3.3.17): the same as READDIR's.
pub type ReaddirplusResFail = ReaddirResFail;

/// `READDIRPLUS3res` (RFC 1813 section 3.3.17).
pub type ReaddirplusRes = Res3<ReaddirplusResOk, ReaddirplusResFail>;

/// Builds a [`ReaddirplusResOk`] bounded by both `dircount` (directory information
/// only) and `maxcount` (whole reply, status word included).
pub type ReaddirplusBuilder = DirListBuilder<Entryplus3>;

impl ReaddirplusBuilder {
    /// Start a reply for a request with the given `dircount` and `maxcount`.
    pub fn new(
        dir_attributes: PostOpAttr,
        cookieverf: CookieVerf3,
        dircount: u32,
        maxcount: u32,
    ) -> Self {
        Self::with_limits(
            dir_attributes,
            cookieverf,
            maxcount as usize,
            dircount as usize,
        )
    }
}
