//! Client ID and session operations (RFC 8881 sections 18.34-18.37, 18.46, 18.50,
//! 18.51): EXCHANGE_ID, CREATE_SESSION, DESTROY_SESSION, SEQUENCE, DESTROY_CLIENTID,
//! RECLAIM_COMPLETE and BIND_CONN_TO_SESSION; and NFSv4.0's client ID operations
//! (RFC 7530 sections 16.33, 16.34, 16.24, 16.20, 16.37): SETCLIENTID,
//! SETCLIENTID_CONFIRM, RENEW, OPEN_CONFIRM's arguments and RELEASE_LOCKOWNER's owner.
//!
//! Only SP4_NONE and SP4_MACH_CRED state protection decode (SP4_SSV is refused as
//! undecodable: the server offers no SSV); callback security parameters decode for
//! AUTH_NONE, AUTH_SYS and RPCSEC_GSS and are otherwise ignored (no backchannel yet).

use super::types::{Bitmap4, ChannelAttrs4, List, NfsTime4, Opaque4, SessionId4, Verifier4};
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrError, XdrResult, XdrWrite, xdr_struct};
use bytes::BufMut;

/// EXCHGID4_FLAG_USE_NON_PNFS.
pub const EXCHGID4_FLAG_USE_NON_PNFS: u32 = 0x0001_0000;
/// EXCHGID4_FLAG_USE_PNFS_MDS | EXCHGID4_FLAG_USE_PNFS_DS.
pub const EXCHGID4_FLAG_MASK_PNFS: u32 = 0x0007_0000;
/// EXCHGID4_FLAG_UPD_CONFIRMED_REC_A.
pub const EXCHGID4_FLAG_UPD_CONFIRMED_REC_A: u32 = 0x4000_0000;
/// EXCHGID4_FLAG_CONFIRMED_R.
pub const EXCHGID4_FLAG_CONFIRMED_R: u32 = 0x8000_0000;
/// CREATE_SESSION4_FLAG_PERSIST.
pub const CREATE_SESSION4_FLAG_PERSIST: u32 = 0x1;
/// CREATE_SESSION4_FLAG_CONN_BACK_CHAN.
pub const CREATE_SESSION4_FLAG_CONN_BACK_CHAN: u32 = 0x2;

xdr_struct! {
    /// `client_owner4`.
    pub struct ClientOwner4 {
        pub verifier: Verifier4,
        pub ownerid: Opaque4,
    }
}

xdr_struct! {
    /// `nfs_impl_id4`.
    pub struct NfsImplId4 {
        pub domain: Opaque4,
        pub name: Opaque4,
        pub date: NfsTime4,
    }
}

/// `state_protect4_a`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateProtect4A {
    None,
    MachCred { enforce: Bitmap4, allow: Bitmap4 },
}

impl XdrEncode for StateProtect4A {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            StateProtect4A::None => out.put_xdr_u32(0),
            StateProtect4A::MachCred { enforce, allow } => {
                out.put_xdr_u32(1);
                enforce.encode(out);
                allow.encode(out);
            }
        }
    }
}

impl XdrDecode for StateProtect4A {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        match dec.u32()? {
            0 => Ok(StateProtect4A::None),
            1 => Ok(StateProtect4A::MachCred {
                enforce: Bitmap4::decode(dec)?,
                allow: Bitmap4::decode(dec)?,
            }),
            v => Err(XdrError::BadDiscriminant {
                what: "state_protect_how4",
                value: v,
            }),
        }
    }
}

xdr_struct! {
    /// EXCHANGE_ID4args.
    pub struct ExchangeIdArgs {
        pub clientowner: ClientOwner4,
        pub flags: u32,
        pub state_protect: StateProtect4A,
        pub client_impl_id: List<NfsImplId4, 1>,
    }
}

xdr_struct! {
    /// `server_owner4`.
    pub struct ServerOwner4 {
        pub minor_id: u64,
        pub major_id: Opaque4,
    }
}

xdr_struct! {
    /// EXCHANGE_ID4resok; the state protection is always SP4_NONE (the `u32` 0).
    pub struct ExchangeIdResOk {
        pub clientid: u64,
        pub sequenceid: u32,
        pub flags: u32,
        pub state_protect: u32,
        pub server_owner: ServerOwner4,
        pub server_scope: Opaque4,
        pub server_impl_id: List<NfsImplId4, 1>,
    }
}

xdr_struct! {
    /// `authsys_parms` of a callback (RFC 5531).
    pub struct AuthSysParms {
        pub stamp: u32,
        pub machinename: Opaque4,
        pub uid: u32,
        pub gid: u32,
        pub gids: List<u32, 16>,
    }
}

/// `callback_sec_parms4`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackSecParms4 {
    None,
    Sys(AuthSysParms),
    Gss {
        service: u32,
        from_server: Opaque4,
        from_client: Opaque4,
    },
}

impl XdrEncode for CallbackSecParms4 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            CallbackSecParms4::None => out.put_xdr_u32(0),
            CallbackSecParms4::Sys(p) => {
                out.put_xdr_u32(1);
                p.encode(out);
            }
            CallbackSecParms4::Gss {
                service,
                from_server,
                from_client,
            } => {
                out.put_xdr_u32(6);
                out.put_xdr_u32(*service);
                from_server.encode(out);
                from_client.encode(out);
            }
        }
    }
}

impl XdrDecode for CallbackSecParms4 {
    fn decode(dec: &mut Decoder<'_>) -> XdrResult<Self> {
        match dec.u32()? {
            0 => Ok(CallbackSecParms4::None),
            1 => Ok(CallbackSecParms4::Sys(AuthSysParms::decode(dec)?)),
            6 => Ok(CallbackSecParms4::Gss {
                service: dec.u32()?,
                from_server: Opaque4::decode(dec)?,
                from_client: Opaque4::decode(dec)?,
            }),
            v => Err(XdrError::BadDiscriminant {
                what: "callback_sec_parms4",
                value: v,
            }),
        }
    }
}

xdr_struct! {
    /// CREATE_SESSION4args.
    pub struct CreateSessionArgs {
        pub clientid: u64,
        pub sequence: u32,
        pub flags: u32,
        pub fore_chan_attrs: ChannelAttrs4,
        pub back_chan_attrs: ChannelAttrs4,
        pub cb_program: u32,
        pub sec_parms: List<CallbackSecParms4, 16>,
    }
}

xdr_struct! {
    /// BACKCHANNEL_CTL4args.
    pub struct BackchannelCtlArgs {
        pub cb_program: u32,
        pub sec_parms: List<CallbackSecParms4, 16>,
    }
}

xdr_struct! {
    /// CREATE_SESSION4resok.
    pub struct CreateSessionResOk {
        pub sessionid: SessionId4,
        pub sequence: u32,
        pub flags: u32,
        pub fore_chan_attrs: ChannelAttrs4,
        pub back_chan_attrs: ChannelAttrs4,
    }
}

xdr_struct! {
    /// SEQUENCE4args.
    pub struct SequenceArgs {
        pub sessionid: SessionId4,
        pub sequenceid: u32,
        pub slotid: u32,
        pub highest_slotid: u32,
        pub cachethis: bool,
    }
}

xdr_struct! {
    /// SEQUENCE4resok.
    pub struct SequenceResOk {
        pub sessionid: SessionId4,
        pub sequenceid: u32,
        pub slotid: u32,
        pub highest_slotid: u32,
        pub target_highest_slotid: u32,
        pub status_flags: u32,
    }
}

xdr_struct! {
    /// BIND_CONN_TO_SESSION4args.
    pub struct BindConnArgs {
        pub sessionid: SessionId4,
        pub dir: u32,
        pub use_conn_in_rdma_mode: bool,
    }
}

xdr_struct! {
    /// BIND_CONN_TO_SESSION4resok.
    pub struct BindConnResOk {
        pub sessionid: SessionId4,
        pub dir: u32,
        pub use_conn_in_rdma_mode: bool,
    }
}

xdr_struct! {
    /// `cb_client4` of SETCLIENTID: the callback program and address (`netaddr4`).
    pub struct CbClient4 {
        pub cb_program: u32,
        pub r_netid: Opaque4,
        pub r_addr: Opaque4,
    }
}

xdr_struct! {
    /// SETCLIENTID4args.
    pub struct SetClientIdArgs {
        pub client: ClientOwner4,
        pub callback: CbClient4,
        pub callback_ident: u32,
    }
}

xdr_struct! {
    /// SETCLIENTID4resok.
    pub struct SetClientIdResOk {
        pub clientid: u64,
        pub confirm: Verifier4,
    }
}

xdr_struct! {
    /// SETCLIENTID_CONFIRM4args.
    pub struct SetClientIdConfirmArgs {
        pub clientid: u64,
        pub confirm: Verifier4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfs4::types::RdmaIrd;

    fn attrs() -> ChannelAttrs4 {
        ChannelAttrs4 {
            headerpadsize: 0,
            maxrequestsize: 1 << 20,
            maxresponsesize: 1 << 20,
            maxresponsesize_cached: 4096,
            maxoperations: 8,
            maxrequests: 16,
            rdma_ird: RdmaIrd(None),
        }
    }

    #[test]
    fn session_args_round_trip() {
        let e = ExchangeIdArgs {
            clientowner: ClientOwner4 {
                verifier: [1; 8],
                ownerid: Opaque4(b"linux".to_vec()),
            },
            flags: 0x101,
            state_protect: StateProtect4A::None,
            client_impl_id: List(vec![]),
        };
        assert_eq!(ExchangeIdArgs::from_xdr(&e.to_xdr()).unwrap(), e);
        let c = CreateSessionArgs {
            clientid: 5,
            sequence: 1,
            flags: 3,
            fore_chan_attrs: attrs(),
            back_chan_attrs: attrs(),
            cb_program: 0x4000_0000,
            sec_parms: List(vec![
                CallbackSecParms4::None,
                CallbackSecParms4::Sys(AuthSysParms {
                    stamp: 1,
                    machinename: Opaque4(b"h".to_vec()),
                    uid: 0,
                    gid: 0,
                    gids: List(vec![1, 2]),
                }),
            ]),
        };
        assert_eq!(CreateSessionArgs::from_xdr(&c.to_xdr()).unwrap(), c);
    }

    /// `state_protect_how4` (SP4_NONE 0, SP4_MACH_CRED 1), the flavors of
    /// `callback_sec_parms4` (AUTH_NONE 0, AUTH_SYS 1, RPCSEC_GSS 6) and the
    /// EXCHANGE_ID / CREATE_SESSION flags as RFC 8881 and its XDR number them.
    #[test]
    fn session_wire_numbers_are_the_rfcs() {
        let mach = StateProtect4A::MachCred {
            enforce: Bitmap4::default(),
            allow: Bitmap4::default(),
        };
        for (sp, n) in [(StateProtect4A::None, 0u32), (mach, 1)] {
            assert_eq!(sp.to_xdr()[..4], n.to_be_bytes(), "{sp:?}");
        }
        let sys = CallbackSecParms4::Sys(AuthSysParms {
            stamp: 0,
            machinename: Opaque4(vec![]),
            uid: 0,
            gid: 0,
            gids: List(vec![]),
        });
        let gss = CallbackSecParms4::Gss {
            service: 1,
            from_server: Opaque4(vec![]),
            from_client: Opaque4(vec![]),
        };
        for (p, n) in [(CallbackSecParms4::None, 0u32), (sys, 1), (gss, 6)] {
            let bytes = p.to_xdr();
            assert_eq!(bytes[..4], n.to_be_bytes(), "{p:?}");
            assert_eq!(CallbackSecParms4::from_xdr(&bytes).unwrap(), p);
        }
        macro_rules! rfc {
            ($($ours:path = $n:literal)*) => { $(assert_eq!($ours, $n, stringify!($ours));)* };
        }
        rfc!(
            EXCHGID4_FLAG_USE_NON_PNFS = 0x0001_0000 EXCHGID4_FLAG_MASK_PNFS = 0x0007_0000
            EXCHGID4_FLAG_UPD_CONFIRMED_REC_A = 0x4000_0000
            EXCHGID4_FLAG_CONFIRMED_R = 0x8000_0000
            CREATE_SESSION4_FLAG_PERSIST = 0x1 CREATE_SESSION4_FLAG_CONN_BACK_CHAN = 0x2
            crate::nfs4::fh::AUTH_SYS = 1
        );
    }

    #[test]
    fn setclientid_round_trip() {
        let a = SetClientIdArgs {
            client: ClientOwner4 {
                verifier: [4; 8],
                ownerid: Opaque4(b"Linux NFSv4.0 host".to_vec()),
            },
            callback: CbClient4 {
                cb_program: 0x4000_0000,
                r_netid: Opaque4(b"tcp".to_vec()),
                r_addr: Opaque4(b"10.0.2.15.3.7".to_vec()),
            },
            callback_ident: 1,
        };
        assert_eq!(SetClientIdArgs::from_xdr(&a.to_xdr()).unwrap(), a);
    }

    #[test]
    fn ssv_and_truncation_fail_cleanly() {
        let mut v = ExchangeIdArgs {
            clientowner: ClientOwner4 {
                verifier: [1; 8],
                ownerid: Opaque4(vec![]),
            },
            flags: 0,
            state_protect: StateProtect4A::None,
            client_impl_id: List(vec![]),
        }
        .to_xdr();
        // state_protect4_a is at offset 8 (verifier) + 4 (empty owner) + 4 (flags)
        v[16..20].copy_from_slice(&2u32.to_be_bytes());
        assert!(ExchangeIdArgs::from_xdr(&v).is_err());
        let s = SequenceArgs {
            sessionid: [9; 16],
            sequenceid: 1,
            slotid: 0,
            highest_slotid: 0,
            cachethis: false,
        }
        .to_xdr();
        for n in 0..s.len() {
            assert!(SequenceArgs::from_xdr(&s[..n]).is_err());
        }
    }
}
