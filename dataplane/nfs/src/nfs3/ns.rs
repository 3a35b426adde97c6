//! NFSv3 namespace procedures (RFC 1813 sections 3.3.3 LOOKUP, 3.3.5 READLINK,
//! 3.3.8 CREATE, 3.3.9 MKDIR, 3.3.10 SYMLINK, 3.3.11 MKNOD, 3.3.12 REMOVE,
//! 3.3.13 RMDIR, 3.3.14 RENAME, 3.3.15 LINK).

use bytes::BufMut;

use super::types::{
    CreateVerf3, DirOpArgs3, Ftype3, NfsFh3, NfsPath3, PostOpAttr, PostOpFh3, Res3, Sattr3,
    SpecData3, WccData,
};
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrError, XdrResult, XdrWrite, xdr_struct};

xdr_struct! {
    /// `LOOKUP3args` (RFC 1813 section 3.3.3).
    pub struct LookupArgs {
        /// Directory and name to look up.
        pub what: DirOpArgs3,
    }
}

xdr_struct! {
    /// `LOOKUP3resok` (RFC 1813 section 3.3.3).
    pub struct LookupResOk {
        /// Handle of the object found.
        pub object: NfsFh3,
        /// Attributes of the object.
        pub obj_attributes: PostOpAttr,
        /// Attributes of the directory.
        pub dir_attributes: PostOpAttr,
    }
}

xdr_struct! {
    /// `LOOKUP3resfail` (RFC 1813 section 3.3.3).
    #[derive(Default)]
    pub struct LookupResFail {
        /// Attributes of the directory.
        pub dir_attributes: PostOpAttr,
    }
}

/// `LOOKUP3res` (RFC 1813 section 3.3.3).
pub type LookupRes = Res3<LookupResOk, LookupResFail>;

xdr_struct! {
    /// `READLINK3args` (RFC 1813 section 3.3.5).
    pub struct ReadlinkArgs {
        /// The symbolic link.
        pub symlink: NfsFh3,
    }
}

xdr_struct! {
    /// `READLINK3resok` (RFC 1813 section 3.3.5).
    pub struct ReadlinkResOk {
        /// Attributes of the link.
        pub symlink_attributes: PostOpAttr,
        /// Link target.
        pub data: NfsPath3,
    }
}

xdr_struct! {
    /// `READLINK3resfail` (RFC 1813 section 3.3.5).
    #[derive(Default)]
    pub struct ReadlinkResFail {
        /// Attributes of the link.
        pub symlink_attributes: PostOpAttr,
    }
}

/// `READLINK3res` (RFC 1813 section 3.3.5).
pub type ReadlinkRes = Res3<ReadlinkResOk, ReadlinkResFail>;

/// `createhow3` (RFC 1813 section 3.3.8), switched on `createmode3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateHow3 {
    /// UNCHECKED (0): create or truncate, with initial attributes.
    Unchecked(Sattr3),
    /// GUARDED (1): fail with NFS3ERR_EXIST if the name exists.
    Guarded(Sattr3),
    /// EXCLUSIVE (2): exclusive create identified by a verifier.
    Exclusive(CreateVerf3),
}

impl XdrEncode for CreateHow3 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            CreateHow3::Unchecked(a) => {
                out.put_xdr_u32(0);
                a.encode(out);
            }
            CreateHow3::Guarded(a) => {
                out.put_xdr_u32(1);
                a.encode(out);
            }
            CreateHow3::Exclusive(v) => {
                out.put_xdr_u32(2);
                v.encode(out);
            }
        }
    }
}

impl XdrDecode for CreateHow3 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        match dec.u32()? {
            0 => Ok(CreateHow3::Unchecked(Sattr3::decode(dec)?)),
            1 => Ok(CreateHow3::Guarded(Sattr3::decode(dec)?)),
            2 => Ok(CreateHow3::Exclusive(CreateVerf3::decode(dec)?)),
            value => Err(XdrError::BadDiscriminant {
                what: "createmode3",
                value,
            }),
        }
    }
}

xdr_struct! {
    /// `CREATE3args` (RFC 1813 section 3.3.8).
    pub struct CreateArgs {
        /// Directory and name of the new file (`where` in the RFC).
        pub where_: DirOpArgs3,
        /// Creation mode.
        pub how: CreateHow3,
    }
}

xdr_struct! {
    /// `CREATE3resok` (RFC 1813 section 3.3.8); also the `resok` of MKDIR, SYMLINK, MKNOD.
    pub struct CreateResOk {
        /// Handle of the new object.
        pub obj: PostOpFh3,
        /// Attributes of the new object.
        pub obj_attributes: PostOpAttr,
        /// Weak cache consistency data of the directory.
        pub dir_wcc: WccData,
    }
}

xdr_struct! {
    /// `CREATE3resfail` (RFC 1813 section 3.3.8); also the `resfail` of MKDIR, SYMLINK,
    /// MKNOD, REMOVE and RMDIR.
    #[derive(Default)]
    pub struct CreateResFail {
        /// Weak cache consistency data of the directory.
        pub dir_wcc: WccData,
    }
}

/// `CREATE3res` (RFC 1813 section 3.3.8).
pub type CreateRes = Res3<CreateResOk, CreateResFail>;

xdr_struct! {
    /// `MKDIR3args` (RFC 1813 section 3.3.9).
    pub struct MkdirArgs {
        /// Directory and name of the new directory.
        pub where_: DirOpArgs3,
        /// Initial attributes.
        pub attributes: Sattr3,
    }
}

/// `MKDIR3resok` (RFC 1813 section 3.3.9): same layout as `CREATE3resok`.
pub type MkdirResOk = CreateResOk;
/// `MKDIR3resfail` (RFC 1813 section 3.3.9).
pub type MkdirResFail = CreateResFail;
/// `MKDIR3res` (RFC 1813 section 3.3.9).
pub type MkdirRes = Res3<MkdirResOk, MkdirResFail>;

xdr_struct! {
    /// `symlinkdata3` (RFC 1813 section 3.3.10).
    pub struct SymlinkData3 {
        /// Initial attributes of the link.
        pub symlink_attributes: Sattr3,
        /// Link target.
        pub symlink_data: NfsPath3,
    }
}

xdr_struct! {
    /// `SYMLINK3args` (RFC 1813 section 3.3.10).
    pub struct SymlinkArgs {
        /// Directory and name of the new link.
        pub where_: DirOpArgs3,
        /// Attributes and target.
        pub symlink: SymlinkData3,
    }
}

/// `SYMLINK3resok` (RFC 1813 section 3.3.10).
pub type SymlinkResOk = CreateResOk;
/// `SYMLINK3resfail` (RFC 1813 section 3.3.10).
pub type SymlinkResFail = CreateResFail;
/// `SYMLINK3res` (RFC 1813 section 3.3.10).
pub type SymlinkRes = Res3<SymlinkResOk, SymlinkResFail>;

xdr_struct! {
    /// `devicedata3` (RFC 1813 section 3.3.11).
    pub struct DeviceData3 {
        /// Initial attributes.
        pub dev_attributes: Sattr3,
        /// Major/minor numbers.
        pub spec: SpecData3,
    }
}

/// `mknoddata3` (RFC 1813 section 3.3.11), switched on `ftype3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MknodData3 {
    /// NF3CHR: character device.
    Chr(DeviceData3),
    /// NF3BLK: block device.
    Blk(DeviceData3),
    /// NF3SOCK: socket, with initial attributes.
    Sock(Sattr3),
    /// NF3FIFO: named pipe, with initial attributes.
    Fifo(Sattr3),
    /// NF3REG, NF3DIR or NF3LNK (void arm): the server answers NFS3ERR_BADTYPE.
    Other(Ftype3),
}

impl MknodData3 {
    /// The requested file type.
    pub fn ftype(&self) -> Ftype3 {
        match self {
            MknodData3::Chr(_) => Ftype3::Chr,
            MknodData3::Blk(_) => Ftype3::Blk,
            MknodData3::Sock(_) => Ftype3::Sock,
            MknodData3::Fifo(_) => Ftype3::Fifo,
            MknodData3::Other(t) => *t,
        }
    }
}

impl XdrEncode for MknodData3 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        self.ftype().encode(out);
        match self {
            MknodData3::Chr(d) | MknodData3::Blk(d) => d.encode(out),
            MknodData3::Sock(a) | MknodData3::Fifo(a) => a.encode(out),
            MknodData3::Other(_) => {}
        }
    }
}

impl XdrDecode for MknodData3 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        Ok(match Ftype3::decode(dec)? {
            Ftype3::Chr => MknodData3::Chr(DeviceData3::decode(dec)?),
            Ftype3::Blk => MknodData3::Blk(DeviceData3::decode(dec)?),
            Ftype3::Sock => MknodData3::Sock(Sattr3::decode(dec)?),
            Ftype3::Fifo => MknodData3::Fifo(Sattr3::decode(dec)?),
            t @ (Ftype3::Reg | Ftype3::Dir | Ftype3::Lnk) => MknodData3::Other(t),
        })
    }
}

xdr_struct! {
    /// `MKNOD3args` (RFC 1813 section 3.3.11).
    pub struct MknodArgs {
        /// Directory and name of the new node.
        pub where_: DirOpArgs3,
        /// Type and type-specific data.
        pub what: MknodData3,
    }
}

/// `MKNOD3resok` (RFC 1813 section 3.3.11).
pub type MknodResOk = CreateResOk;
/// `MKNOD3resfail` (RFC 1813 section 3.3.11).
pub type MknodResFail = CreateResFail;
/// `MKNOD3res` (RFC 1813 section 3.3.11).
pub type MknodRes = Res3<MknodResOk, MknodResFail>;

xdr_struct! {
    /// `REMOVE3args` (RFC 1813 section 3.3.12).
    pub struct RemoveArgs {
        /// Directory and name to remove.
        pub object: DirOpArgs3,
    }
}

xdr_struct! {
    /// `REMOVE3resok` (RFC 1813 section 3.3.12); also the `resok` of RMDIR.
    pub struct RemoveResOk {
        /// Weak cache consistency data of the directory.
        pub dir_wcc: WccData,
    }
}

/// `REMOVE3resfail` (RFC 1813 section 3.3.12).
pub type RemoveResFail = CreateResFail;
/// `REMOVE3res` (RFC 1813 section 3.3.12).
pub type RemoveRes = Res3<RemoveResOk, RemoveResFail>;

xdr_struct! {
    /// `RMDIR3args` (RFC 1813 section 3.3.13).
    pub struct RmdirArgs {
        /// Directory and name to remove.
        pub object: DirOpArgs3,
    }
}

/// `RMDIR3resok` (RFC 1813 section 3.3.13).
pub type RmdirResOk = RemoveResOk;
/// `RMDIR3resfail` (RFC 1813 section 3.3.13).
pub type RmdirResFail = CreateResFail;
/// `RMDIR3res` (RFC 1813 section 3.3.13).
pub type RmdirRes = Res3<RmdirResOk, RmdirResFail>;

xdr_struct! {
    /// `RENAME3args` (RFC 1813 section 3.3.14).
    pub struct RenameArgs {
        /// Source directory and name.
        pub from: DirOpArgs3,
        /// Target directory and name.
        pub to: DirOpArgs3,
    }
}

xdr_struct! {
    /// `RENAME3resok` (RFC 1813 section 3.3.14).
    pub struct RenameResOk {
        /// Weak cache consistency data of the source directory.
        pub fromdir_wcc: WccData,
        /// Weak cache consistency data of the target directory.
        pub todir_wcc: WccData,
    }
}

xdr_struct! {
    /// `RENAME3resfail` (RFC 1813 section 3.3.14).
    #[derive(Default)]
    pub struct RenameResFail {
        /// Weak cache consistency data of the source directory.
        pub fromdir_wcc: WccData,
        /// Weak cache consistency data of the target directory.
        pub todir_wcc: WccData,
    }
}

/// `RENAME3res` (RFC 1813 section 3.3.14).
pub type RenameRes = Res3<RenameResOk, RenameResFail>;

xdr_struct! {
    /// `LINK3args` (RFC 1813 section 3.3.15).
    pub struct LinkArgs {
        /// Existing file.
        pub file: NfsFh3,
        /// Directory and name of the new link.
        pub link: DirOpArgs3,
    }
}

xdr_struct! {
    /// `LINK3resok` (RFC 1813 section 3.3.15).
    pub struct LinkResOk {
        /// Attributes of the file.
        pub file_attributes: PostOpAttr,
        /// Weak cache consistency data of the link directory.
        pub linkdir_wcc: WccData,
    }
}

xdr_struct! {
    /// `LINK3resfail` (RFC 1813 section 3.3.15).
    #[derive(Default)]
    pub struct LinkResFail {
        /// Attributes of the file.
        pub file_attributes: PostOpAttr,
        /// Weak cache consistency data of the link directory.
        pub linkdir_wcc: WccData,
    }
}

/// `LINK3res` (RFC 1813 section 3.3.15).
pub type LinkRes = Res3<LinkResOk, LinkResFail>;
