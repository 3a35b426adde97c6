//! MOUNT protocol version 3 (RFC 1813 appendix I, section 5): program 100005,
//! version 3, procedures NULL, MNT, DUMP, UMNT, UMNTALL and EXPORT (section 5.2), with
//! the basic types of section 5.1 (`fhandle3`, `dirpath`, `name`, `mountstat3`).

use bytes::BufMut;

use crate::nfs3::NfsFh3;
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrResult, XdrWrite, xdr_enum};

/// RPC program number of MOUNT (RFC 1813 section 5.1.1).
pub const PROGRAM: u32 = 100_005;
/// MOUNT protocol version implemented here.
pub const VERSION: u32 = 3;
/// Maximum bytes in a path name (`MNTPATHLEN`, RFC 1813 section 5.1.4).
pub const MNTPATHLEN: usize = 1024;
/// Maximum bytes in a name (`MNTNAMLEN`, RFC 1813 section 5.1.4).
pub const MNTNAMLEN: usize = 255;
/// Maximum bytes in a V3 file handle (`FHSIZE3`, RFC 1813 section 5.1.4).
pub const FHSIZE3: usize = 64;
/// Decode cap for the `auth_flavors<>` list of a MNT reply (unbounded in the RFC).
pub const MAX_AUTH_FLAVORS: usize = 64;

xdr_enum! {
    /// MOUNT procedure numbers (RFC 1813 section 5.2).
    pub enum MountProc ("mount procedure") {
        /// MOUNTPROC3_NULL.
        Null = 0,
        /// MOUNTPROC3_MNT.
        Mnt = 1,
        /// MOUNTPROC3_DUMP.
        Dump = 2,
        /// MOUNTPROC3_UMNT.
        Umnt = 3,
        /// MOUNTPROC3_UMNTALL.
        Umntall = 4,
        /// MOUNTPROC3_EXPORT.
        Export = 5,
    }
}

xdr_enum! {
    /// `mountstat3` (RFC 1813 section 5.1.5).
    pub enum MountStat3 ("mountstat3") {
        /// MNT3_OK: no error.
        Ok = 0,
        /// MNT3ERR_PERM: not owner.
        Perm = 1,
        /// MNT3ERR_NOENT: no such file or directory.
        NoEnt = 2,
        /// MNT3ERR_IO: I/O error.
        Io = 5,
        /// MNT3ERR_ACCES: permission denied.
        Acces = 13,
        /// MNT3ERR_NOTDIR: not a directory.
        NotDir = 20,
        /// MNT3ERR_INVAL: invalid argument.
        Inval = 22,
        /// MNT3ERR_NAMETOOLONG: file name too long.
        NameTooLong = 63,
        /// MNT3ERR_NOTSUPP: operation not supported.
        NotSupp = 10004,
        /// MNT3ERR_SERVERFAULT: a failure on the server.
        ServerFault = 10006,
    }
}

/// `dirpath` (RFC 1813 section 5.1.5): a path of at most [`MNTPATHLEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DirPath(pub Vec<u8>);

impl DirPath {
    /// The path bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for DirPath {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl XdrEncode for DirPath {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_string(&self.0);
    }
}

impl XdrDecode for DirPath {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self(dec.string(MNTPATHLEN)?.to_vec()))
    }
}

/// `name` (RFC 1813 section 5.1.5): a host or group name of at most [`MNTNAMLEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MountName(pub Vec<u8>);

impl From<&str> for MountName {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl XdrEncode for MountName {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_string(&self.0);
    }
}

impl XdrDecode for MountName {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self(dec.string(MNTNAMLEN)?.to_vec()))
    }
}

/// MNT arguments (RFC 1813 section 5.2.1): the directory to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MntArgs {
    /// Server path to mount.
    pub dirpath: DirPath,
}

impl XdrEncode for MntArgs {
    fn encode<B: BufMut>(&self, out: &mut B) {
        self.dirpath.encode(out);
    }
}

impl XdrDecode for MntArgs {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self {
            dirpath: DirPath::decode(dec)?,
        })
    }
}

/// `mountres3_ok` (RFC 1813 section 5.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MntResOk {
    /// Root handle of the mounted directory (`fhandle3`, at most 64 bytes).
    pub fhandle: NfsFh3,
    /// Acceptable RPC authentication flavors, preferred first (`int` on the wire).
    pub auth_flavors: Vec<u32>,
}

/// `mountres3` (RFC 1813 section 5.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MntRes {
    /// MNT3_OK with the handle and flavors.
    Ok(MntResOk),
    /// Any error status (void body). Do not use [`MountStat3::Ok`] here.
    Err(MountStat3),
}

impl XdrEncode for MntRes {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            MntRes::Ok(ok) => {
                MountStat3::Ok.encode(out);
                ok.fhandle.encode(out);
                out.put_xdr_u32(u32::try_from(ok.auth_flavors.len()).unwrap_or(u32::MAX));
                for f in &ok.auth_flavors {
                    out.put_xdr_u32(*f);
                }
            }
            // An `Err` carrying MNT3_OK would be a malformed reply; send SERVERFAULT.
            MntRes::Err(MountStat3::Ok) => MountStat3::ServerFault.encode(out),
            MntRes::Err(s) => s.encode(out),
        }
    }
}

impl XdrDecode for MntRes {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        match MountStat3::decode(dec)? {
            MountStat3::Ok => Ok(MntRes::Ok(MntResOk {
                fhandle: NfsFh3(dec.opaque_vec(FHSIZE3)?),
                auth_flavors: dec.array(MAX_AUTH_FLAVORS, Decoder::u32)?,
            })),
            s => Ok(MntRes::Err(s)),
        }
    }
}

/// `mountbody` (RFC 1813 section 5.2.2) without its `ml_next` link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountBody {
    /// Client host name.
    pub hostname: MountName,
    /// Mounted directory.
    pub directory: DirPath,
}

/// DUMP result (`mountlist`, RFC 1813 section 5.2.2) flattened into a vector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DumpRes {
    /// Mount entries.
    pub mounts: Vec<MountBody>,
}

impl XdrEncode for DumpRes {
    fn encode<B: BufMut>(&self, out: &mut B) {
        for m in &self.mounts {
            out.put_xdr_bool(true);
            m.hostname.encode(out);
            m.directory.encode(out);
        }
        out.put_xdr_bool(false);
    }
}

impl XdrDecode for DumpRes {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self {
            mounts: dec.list(usize::MAX, |d| {
                Ok(MountBody {
                    hostname: MountName::decode(d)?,
                    directory: DirPath::decode(d)?,
                })
            })?,
        })
    }
}

/// UMNT arguments (RFC 1813 section 5.2.3); the result is void.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UmntArgs {
    /// Directory to unmount.
    pub dirpath: DirPath,
}

impl XdrEncode for UmntArgs {
    fn encode<B: BufMut>(&self, out: &mut B) {
        self.dirpath.encode(out);
    }
}

impl XdrDecode for UmntArgs {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self {
            dirpath: DirPath::decode(dec)?,
        })
    }
}

/// `exportnode` (RFC 1813 section 5.2.5) without its `ex_next` link; `groups` is the
/// flattened `groupnode` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportNode {
    /// Exported directory.
    pub dir: DirPath,
    /// Groups (host names, netgroups) allowed to mount it; empty means everyone.
    pub groups: Vec<MountName>,
}

/// EXPORT result (`exports`, RFC 1813 section 5.2.5) flattened into a vector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportRes {
    /// Export entries.
    pub exports: Vec<ExportNode>,
}

impl XdrEncode for ExportRes {
    fn encode<B: BufMut>(&self, out: &mut B) {
        for e in &self.exports {
            out.put_xdr_bool(true);
            e.dir.encode(out);
            for g in &e.groups {
                out.put_xdr_bool(true);
                g.encode(out);
            }
            out.put_xdr_bool(false);
        }
        out.put_xdr_bool(false);
    }
}

impl XdrDecode for ExportRes {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(Self {
            exports: dec.list(usize::MAX, |d| {
                Ok(ExportNode {
                    dir: DirPath::decode(d)?,
                    groups: d.list(usize::MAX, MountName::decode)?,
                })
            })?,
        })
    }
}

/// Arguments of any MOUNT v3 procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountArgs {
    /// NULL (void).
    Null,
    /// MNT.
    Mnt(MntArgs),
    /// DUMP (void).
    Dump,
    /// UMNT.
    Umnt(UmntArgs),
    /// UMNTALL (void).
    Umntall,
    /// EXPORT (void).
    Export,
}

impl MountArgs {
    /// The procedure this value belongs to.
    pub fn proc_num(&self) -> MountProc {
        match self {
            MountArgs::Null => MountProc::Null,
            MountArgs::Mnt(_) => MountProc::Mnt,
            MountArgs::Dump => MountProc::Dump,
            MountArgs::Umnt(_) => MountProc::Umnt,
            MountArgs::Umntall => MountProc::Umntall,
            MountArgs::Export => MountProc::Export,
        }
    }

    /// Decode the arguments of procedure `proc_num`.
    pub fn decode(proc_num: MountProc, dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(match proc_num {
            MountProc::Null => MountArgs::Null,
            MountProc::Mnt => MountArgs::Mnt(MntArgs::decode(dec)?),
            MountProc::Dump => MountArgs::Dump,
            MountProc::Umnt => MountArgs::Umnt(UmntArgs::decode(dec)?),
            MountProc::Umntall => MountArgs::Umntall,
            MountProc::Export => MountArgs::Export,
        })
    }
}

impl XdrEncode for MountArgs {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            MountArgs::Mnt(a) => a.encode(out),
            MountArgs::Umnt(a) => a.encode(out),
            MountArgs::Null | MountArgs::Dump | MountArgs::Umntall | MountArgs::Export => {}
        }
    }
}

/// Results of any MOUNT v3 procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountRes {
    /// NULL (void).
    Null,
    /// MNT.
    Mnt(MntRes),
    /// DUMP.
    Dump(DumpRes),
    /// UMNT (void).
    Umnt,
    /// UMNTALL (void).
    Umntall,
    /// EXPORT.
    Export(ExportRes),
}

impl MountRes {
    /// The procedure this value belongs to.
    pub fn proc_num(&self) -> MountProc {
        match self {
            MountRes::Null => MountProc::Null,
            MountRes::Mnt(_) => MountProc::Mnt,
            MountRes::Dump(_) => MountProc::Dump,
            MountRes::Umnt => MountProc::Umnt,
            MountRes::Umntall => MountProc::Umntall,
            MountRes::Export(_) => MountProc::Export,
        }
    }

    /// Decode the results of procedure `proc_num`.
    pub fn decode(proc_num: MountProc, dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(match proc_num {
            MountProc::Null => MountRes::Null,
            MountProc::Mnt => MountRes::Mnt(MntRes::decode(dec)?),
            MountProc::Dump => MountRes::Dump(DumpRes::decode(dec)?),
            MountProc::Umnt => MountRes::Umnt,
            MountProc::Umntall => MountRes::Umntall,
            MountProc::Export => MountRes::Export(ExportRes::decode(dec)?),
        })
    }
}

impl XdrEncode for MountRes {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            MountRes::Mnt(r) => r.encode(out),
            MountRes::Dump(r) => r.encode(out),
            MountRes::Export(r) => r.encode(out),
            MountRes::Null | MountRes::Umnt | MountRes::Umntall => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::XdrError;

    #[test]
    fn mnt_golden() {
        // mountres3: MNT3_OK, fhandle3 of 3 bytes (padded), auth_flavors<> = [AUTH_SYS].
        let res = MntRes::Ok(MntResOk {
            fhandle: NfsFh3(vec![1, 2, 3]),
            auth_flavors: vec![1],
        });
        assert_eq!(
            res.to_xdr(),
            [0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 1, 0, 0, 0, 1]
        );
        assert_eq!(MntRes::Err(MountStat3::Acces).to_xdr(), [0, 0, 0, 13]);
    }

    #[test]
    fn dirpath_cap() {
        let mut v = Vec::new();
        v.put_xdr_string(&[b'a'; MNTPATHLEN + 1]);
        assert!(matches!(
            MntArgs::from_xdr(&v),
            Err(XdrError::TooLong { .. })
        ));
    }
}
