//! NFSv3 basic data types (RFC 1813 section 2.5 "Basic Data Types", section 2.6
//! "Defined Error Numbers", and the structures of section 2.6 used by many procedures:
//! `fattr3`, `post_op_attr`, `wcc_attr`, `pre_op_attr`, `wcc_data`, `post_op_fh3`,
//! `sattr3`, `diropargs3`).

use bytes::BufMut;

use crate::xdr::{
    Decoder, XdrDecode, XdrEncode, XdrError, XdrResult, XdrWrite, opaque_len, xdr_enum, xdr_struct,
};

/// Maximum size of an NFSv3 file handle (`NFS3_FHSIZE`, RFC 1813 section 2.4).
pub const NFS3_FHSIZE: usize = 64;
/// Size of a READDIR cookie verifier (`NFS3_COOKIEVERFSIZE`).
pub const NFS3_COOKIEVERFSIZE: usize = 8;
/// Size of an exclusive-create verifier (`NFS3_CREATEVERFSIZE`).
pub const NFS3_CREATEVERFSIZE: usize = 8;
/// Size of a write verifier (`NFS3_WRITEVERFSIZE`).
pub const NFS3_WRITEVERFSIZE: usize = 8;

/// Decode cap for `filename3` (`string filename3<>` is unbounded in the RFC). Generous
/// on purpose: the server applies its own NAME_MAX and answers NFS3ERR_NAMETOOLONG.
pub const MAX_NAME_DECODE: usize = 4096;
/// Decode cap for `nfspath3`; the server applies its own PATH_MAX.
pub const MAX_PATH_DECODE: usize = 16384;

/// `cookieverf3`.
pub type CookieVerf3 = [u8; NFS3_COOKIEVERFSIZE];
/// `createverf3`.
pub type CreateVerf3 = [u8; NFS3_CREATEVERFSIZE];
/// `writeverf3`.
pub type WriteVerf3 = [u8; NFS3_WRITEVERFSIZE];

/// `nfs_fh3` (RFC 1813 section 2.5): opaque handle of at most 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct NfsFh3(pub Vec<u8>);

impl NfsFh3 {
    /// The handle bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// Encoded size on the wire.
    pub fn xdr_len(&self) -> usize {
        opaque_len(self.0.len())
    }
}

impl From<Vec<u8>> for NfsFh3 {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl XdrEncode for NfsFh3 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.0);
    }
}

impl XdrDecode for NfsFh3 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self(dec.opaque_vec(NFS3_FHSIZE)?))
    }
}

/// `filename3`: a directory entry name as raw bytes (not necessarily UTF-8).
/// Decoded with a cap of [`MAX_NAME_DECODE`]; NAME_MAX is for the server to enforce.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Filename3(pub Vec<u8>);

impl Filename3 {
    /// The name bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Filename3 {
    fn from(v: &[u8]) -> Self {
        Self(v.to_vec())
    }
}

impl From<&str> for Filename3 {
    fn from(v: &str) -> Self {
        Self(v.as_bytes().to_vec())
    }
}

impl XdrEncode for Filename3 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_string(&self.0);
    }
}

impl XdrDecode for Filename3 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self(dec.string(MAX_NAME_DECODE)?.to_vec()))
    }
}

/// `nfspath3`: a symbolic link target as raw bytes. Decoded with a cap of
/// [`MAX_PATH_DECODE`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct NfsPath3(pub Vec<u8>);

impl NfsPath3 {
    /// The path bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for NfsPath3 {
    fn from(v: &[u8]) -> Self {
        Self(v.to_vec())
    }
}

impl From<&str> for NfsPath3 {
    fn from(v: &str) -> Self {
        Self(v.as_bytes().to_vec())
    }
}

impl XdrEncode for NfsPath3 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_string(&self.0);
    }
}

impl XdrDecode for NfsPath3 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self(dec.string(MAX_PATH_DECODE)?.to_vec()))
    }
}

xdr_enum! {
    /// `nfsstat3` (RFC 1813 section 2.6): every defined status.
    pub enum NfsStat3 ("nfsstat3") {
        /// NFS3_OK: success.
        Ok = 0,
        /// NFS3ERR_PERM: not owner.
        Perm = 1,
        /// NFS3ERR_NOENT: no such file or directory.
        NoEnt = 2,
        /// NFS3ERR_IO: hard I/O error.
        Io = 5,
        /// NFS3ERR_NXIO: no such device or address.
        NxIo = 6,
        /// NFS3ERR_ACCES: permission denied.
        Acces = 13,
        /// NFS3ERR_EXIST: file exists.
        Exist = 17,
        /// NFS3ERR_XDEV: cross-device hard link.
        XDev = 18,
        /// NFS3ERR_NODEV: no such device.
        NoDev = 19,
        /// NFS3ERR_NOTDIR: not a directory.
        NotDir = 20,
        /// NFS3ERR_ISDIR: is a directory.
        IsDir = 21,
        /// NFS3ERR_INVAL: invalid or unsupported argument.
        Inval = 22,
        /// NFS3ERR_FBIG: file too large.
        FBig = 27,
        /// NFS3ERR_NOSPC: no space left on device.
        NoSpc = 28,
        /// NFS3ERR_ROFS: read-only file system.
        RoFs = 30,
        /// NFS3ERR_MLINK: too many hard links.
        MLink = 31,
        /// NFS3ERR_NAMETOOLONG: file name too long.
        NameTooLong = 63,
        /// NFS3ERR_NOTEMPTY: directory not empty.
        NotEmpty = 66,
        /// NFS3ERR_DQUOT: quota hard limit exceeded.
        DQuot = 69,
        /// NFS3ERR_STALE: stale file handle.
        Stale = 70,
        /// NFS3ERR_REMOTE: too many levels of remote in path.
        Remote = 71,
        /// NFS3ERR_BADHANDLE: illegal file handle.
        BadHandle = 10001,
        /// NFS3ERR_NOT_SYNC: SETATTR guard check failed.
        NotSync = 10002,
        /// NFS3ERR_BAD_COOKIE: READDIR cookie is stale.
        BadCookie = 10003,
        /// NFS3ERR_NOTSUPP: operation not supported.
        NotSupp = 10004,
        /// NFS3ERR_TOOSMALL: buffer or request too small.
        TooSmall = 10005,
        /// NFS3ERR_SERVERFAULT: server error without a better mapping.
        ServerFault = 10006,
        /// NFS3ERR_BADTYPE: object type not supported by the server.
        BadType = 10007,
        /// NFS3ERR_JUKEBOX: request started but slow; retry later.
        Jukebox = 10008,
    }
}

xdr_enum! {
    /// `ftype3` (RFC 1813 section 2.5): file type.
    pub enum Ftype3 ("ftype3") {
        /// NF3REG: regular file.
        Reg = 1,
        /// NF3DIR: directory.
        Dir = 2,
        /// NF3BLK: block special device.
        Blk = 3,
        /// NF3CHR: character special device.
        Chr = 4,
        /// NF3LNK: symbolic link.
        Lnk = 5,
        /// NF3SOCK: socket.
        Sock = 6,
        /// NF3FIFO: named pipe.
        Fifo = 7,
    }
}

xdr_struct! {
    /// `specdata3` (RFC 1813 section 2.5): device numbers.
    #[derive(Copy, Default, Hash)]
    pub struct SpecData3 {
        /// Major device number.
        pub specdata1: u32,
        /// Minor device number.
        pub specdata2: u32,
    }
}

xdr_struct! {
    /// `nfstime3` (RFC 1813 section 2.5): seconds and nanoseconds since the epoch.
    #[derive(Copy, Default, Hash)]
    pub struct NfsTime3 {
        /// Seconds.
        pub seconds: u32,
        /// Nanoseconds.
        pub nseconds: u32,
    }
}

xdr_struct! {
    /// `fattr3` (RFC 1813 section 2.5): file attributes.
    pub struct Fattr3 {
        /// File type.
        pub ftype: Ftype3,
        /// Protection mode bits.
        pub mode: u32,
        /// Number of hard links.
        pub nlink: u32,
        /// Owner user id.
        pub uid: u32,
        /// Owner group id.
        pub gid: u32,
        /// Size in bytes.
        pub size: u64,
        /// Bytes of disk space actually used.
        pub used: u64,
        /// Device numbers (NF3BLK / NF3CHR).
        pub rdev: SpecData3,
        /// File system id.
        pub fsid: u64,
        /// File id within the file system.
        pub fileid: u64,
        /// Last access.
        pub atime: NfsTime3,
        /// Last data modification.
        pub mtime: NfsTime3,
        /// Last attribute change.
        pub ctime: NfsTime3,
    }
}

/// Encoded size of `fattr3`.
pub const FATTR3_XDR_LEN: usize = 84;

/// `post_op_attr` (RFC 1813 section 2.6): optional attributes.
pub type PostOpAttr = Option<Fattr3>;

/// Encoded size of a `post_op_attr`.
pub fn post_op_attr_len(a: &PostOpAttr) -> usize {
    4 + if a.is_some() { FATTR3_XDR_LEN } else { 0 }
}

xdr_struct! {
    /// `wcc_attr` (RFC 1813 section 2.6): the attribute subset for weak cache consistency.
    #[derive(Copy, Default, Hash)]
    pub struct WccAttr {
        /// Size in bytes.
        pub size: u64,
        /// Last data modification.
        pub mtime: NfsTime3,
        /// Last attribute change.
        pub ctime: NfsTime3,
    }
}

/// `pre_op_attr` (RFC 1813 section 2.6).
pub type PreOpAttr = Option<WccAttr>;

xdr_struct! {
    /// `wcc_data` (RFC 1813 section 2.6): attributes before and after an operation.
    #[derive(Default)]
    pub struct WccData {
        /// Attributes before the operation.
        pub before: PreOpAttr,
        /// Attributes after the operation.
        pub after: PostOpAttr,
    }
}

/// `post_op_fh3` (RFC 1813 section 2.6): optional file handle.
pub type PostOpFh3 = Option<NfsFh3>;

/// Encoded size of a `post_op_fh3`.
pub fn post_op_fh3_len(h: &PostOpFh3) -> usize {
    4 + h.as_ref().map_or(0, NfsFh3::xdr_len)
}

/// `set_atime` / `set_mtime` (RFC 1813 section 2.6, `time_how`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetTime {
    /// DONT_CHANGE (0).
    #[default]
    DontChange,
    /// SET_TO_SERVER_TIME (1).
    ServerTime,
    /// SET_TO_CLIENT_TIME (2) with the client's time.
    ClientTime(NfsTime3),
}

impl XdrEncode for SetTime {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            SetTime::DontChange => out.put_xdr_u32(0),
            SetTime::ServerTime => out.put_xdr_u32(1),
            SetTime::ClientTime(t) => {
                out.put_xdr_u32(2);
                t.encode(out);
            }
        }
    }
}

impl XdrDecode for SetTime {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        match dec.u32()? {
            0 => Ok(SetTime::DontChange),
            1 => Ok(SetTime::ServerTime),
            2 => Ok(SetTime::ClientTime(NfsTime3::decode(dec)?)),
            value => Err(XdrError::BadDiscriminant {
                what: "time_how",
                value,
            }),
        }
    }
}

xdr_struct! {
    /// `sattr3` (RFC 1813 section 2.6): settable attributes; `None` means "don't set".
    #[derive(Default)]
    pub struct Sattr3 {
        /// `set_mode3`.
        pub mode: Option<u32>,
        /// `set_uid3`.
        pub uid: Option<u32>,
        /// `set_gid3`.
        pub gid: Option<u32>,
        /// `set_size3`.
        pub size: Option<u64>,
        /// `set_atime`.
        pub atime: SetTime,
        /// `set_mtime`.
        pub mtime: SetTime,
    }
}

xdr_struct! {
    /// `diropargs3` (RFC 1813 section 2.6): a directory handle and a name in it.
    pub struct DirOpArgs3 {
        /// Directory handle.
        pub dir: NfsFh3,
        /// Name in the directory.
        pub name: Filename3,
    }
}

/// A procedure result (RFC 1813 section 3): `nfsstat3` followed by the `resok` arm on
/// NFS3_OK or the `resfail` arm otherwise. Construct `Fail` only with a non-OK status
/// (a `Fail` carrying NFS3_OK is encoded as NFS3ERR_SERVERFAULT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Res3<T, F> {
    /// NFS3_OK with the `resok` body.
    Ok(T),
    /// An error status with the `resfail` body.
    Fail(NfsStat3, F),
}

impl<T, F> Res3<T, F> {
    /// The status that will be encoded.
    pub fn status(&self) -> NfsStat3 {
        match self {
            Res3::Ok(_) => NfsStat3::Ok,
            Res3::Fail(s, _) => *s,
        }
    }
}

impl<T: XdrEncode, F: XdrEncode> XdrEncode for Res3<T, F> {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            Res3::Ok(ok) => {
                NfsStat3::Ok.encode(out);
                ok.encode(out);
            }
            Res3::Fail(s, fail) => {
                // A `Fail` with NFS3_OK would put a resfail body after an OK status and
                // desynchronize the client; send NFS3ERR_SERVERFAULT instead.
                let s = if *s == NfsStat3::Ok {
                    NfsStat3::ServerFault
                } else {
                    *s
                };
                s.encode(out);
                fail.encode(out);
            }
        }
    }
}

impl<T: XdrDecode, F: XdrDecode> XdrDecode for Res3<T, F> {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        match NfsStat3::decode(dec)? {
            NfsStat3::Ok => Ok(Res3::Ok(T::decode(dec)?)),
            s => Ok(Res3::Fail(s, F::decode(dec)?)),
        }
    }
}
