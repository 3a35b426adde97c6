//! NFS adapters of DittoFS.
//!
//! Wire codecs:
//! * [`xdr`]: XDR encoding/decoding (RFC 4506).
//! * [`rpc`]: ONC RPC v2 call/reply messages and AUTH_NONE/AUTH_SYS (RFC 5531).
//! * [`record`]: record marking over stream transports (RFC 5531 section 11).
//! * [`mount3`]: MOUNT protocol version 3 (RFC 1813 appendix I).
//! * [`nfs3`]: NFS version 3 (RFC 1813).
//! * [`nlm4`]: Network Lock Manager v4 (XNFS chapter 10), [`nsm1`]: Network Status
//!   Monitor v1 (XNFS chapter 11).
//! * [`rpc_client`]: outgoing calls (portmapper GETPORT, NLM GRANTED, SM_NOTIFY);
//!   `backchannel`: NFSv4 callbacks (CB_COMPOUND): 4.1 on a client's own connection,
//!   4.0 on an outgoing one (`cblink`) to the address SETCLIENTID gave (`uaddr`).
//! * [`nfs4`]: NFS version 4, minor versions 0, 1 and 2 (RFC 7530, RFC 8881, RFC 7862):
//!   COMPOUND and its operations, `fattr4`, status codes.
//!
//! Errors: the core's `FsError` becomes a wire status only here, at the adapter's edge,
//! through typed conversions (`From<&FsError>` for [`nfs3::NfsStat3`] and
//! [`nfs4::Nfs4Status`]).
//!
//! The server: [`server::NfsServer`] dispatches NFSv3 (`proc3`), NFSv4.0/4.1/4.2 (`proc4`,
//! COMPOUND with sessions, a pseudo file system joining the shares) and MOUNT (`mountd`)
//! calls onto the protocol-neutral core (`dittofs-vfs`), applying each share's
//! [`export::ExportPolicy`]; `nlmd` serves NLM v4 on each share's lock manager
//! (`dittofs_vfs::state::LockManager`) and [`nsmd`] the status monitor (persisted state
//! number, SM_NOTIFY after a restart); [`portmap`] is the optional embedded portmapper.
//! What clients can cause at will (garbage, refusals, stalls) is counted in metrics and
//! logged a few times, not once per occurrence (`dittofs_vfs::ratelimit`).

mod backchannel;
mod budget;
mod call;
mod cblink;
mod config;
mod conv;
mod dispatch;
mod drc;
pub mod export;
pub mod metrics;
pub mod mount3;
mod mountd;
pub mod nfs3;
pub mod nfs4;
pub mod nlm4;
mod nlm_state;
mod nlmd;
pub mod nsm1;
pub mod nsmd;
pub mod portmap;
mod proc3;
mod proc4;
pub mod record;
pub mod rpc;
pub mod rpc_client;
pub mod server;
mod shared;
mod statd;
mod uaddr;
pub mod xdr;

pub use xdr::{Decoder, XdrDecode, XdrEncode, XdrError, XdrResult, XdrWrite};
