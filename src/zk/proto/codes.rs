//! The numbers of the protocol: opcodes, special xids, create modes, error codes,
//! event types and keeper states (ZooKeeper 3.8.0's `ZooDefs`, `KeeperException.Code`,
//! `Watcher.Event`).

use super::error::ProtoError;

/// An enum over int32 codes. With `other`, unknown codes are kept as a number (the
/// server may be newer than this table); without, `from_code` refuses them.
macro_rules! int_codes {
    (@known $name:ident { $($variant:ident = $value:literal),+ }) => {
        impl $name {
            /// The known value with this number.
            pub(crate) fn known(code: i32) -> Option<Self> {
                match code {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// Every known value, for tests.
            #[cfg(test)]
            pub(crate) const KNOWN: &[Self] = &[$(Self::$variant),+];
        }
    };
    (
        $(#[$meta:meta])*
        $name:ident, other $other:ident {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A code this table does not know, kept as it came.
            $other(i32),
        }
        int_codes!(@known $name { $($variant = $value),+ });
        impl $name {
            /// The number on the wire.
            pub(crate) fn code(self) -> i32 {
                match self {
                    $(Self::$variant => $value,)+
                    Self::$other(code) => code,
                }
            }

            /// The known value, or the number kept as it is.
            pub(crate) fn from_code(code: i32) -> Self {
                Self::known(code).unwrap_or(Self::$other(code))
            }
        }
    };
    (
        $(#[$meta:meta])*
        $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum $name {
            $($(#[$vmeta])* $variant,)+
        }
        int_codes!(@known $name { $($variant = $value),+ });
        impl $name {
            /// The number on the wire.
            pub(crate) fn code(self) -> i32 {
                match self {
                    $(Self::$variant => $value,)+
                }
            }

            /// The known value, or [`ProtoError::UnknownValue`] naming this type.
            pub(crate) fn from_code(code: i32) -> Result<Self, ProtoError> {
                Self::known(code).ok_or(ProtoError::UnknownValue {
                    field: stringify!($name),
                    value: code,
                })
            }
        }
    };
}

int_codes! {
    /// A request's type, the second field of its header.
    OpCode {
        Create = 1,
        Delete = 2,
        Exists = 3,
        GetData = 4,
        SetData = 5,
        GetChildren = 8,
        /// Sent with [`xid::PING`], no body either way.
        Ping = 11,
        /// getChildren whose reply carries the parent's `Stat` too.
        GetChildren2 = 12,
        /// create whose reply carries the new node's `Stat` too.
        Create2 = 15,
        /// `addauth`, sent with [`xid::AUTH`].
        Auth = 100,
        /// Re-arms watches after a reconnect, sent with [`xid::SET_WATCHES`].
        SetWatches = 101,
        /// Ends the session: its ephemeral nodes go at once; the server then closes.
        CloseSession = -11,
    }
}

/// The xids with a meaning of their own. Normal requests count up from 1, and their
/// replies come back in the order they were sent.
pub(crate) mod xid {
    /// A watch notification from the server (its zxid is -1).
    pub(crate) const NOTIFICATION: i32 = -1;
    pub(crate) const PING: i32 = -2;
    pub(crate) const AUTH: i32 = -4;
    pub(crate) const SET_WATCHES: i32 = -8;
}

int_codes! {
    /// The `flags` of a create: persistence and the sequence suffix (10 zero-padded
    /// digits the server appends to the name, counted per parent). Containers and TTL
    /// nodes (4 to 6) are not used by waypost and refused.
    CreateMode {
        Persistent = 0,
        Ephemeral = 1,
        PersistentSequential = 2,
        EphemeralSequential = 3,
    }
}

impl CreateMode {
    pub(crate) fn new(ephemeral: bool, sequential: bool) -> Self {
        match (ephemeral, sequential) {
            (false, false) => Self::Persistent,
            (true, false) => Self::Ephemeral,
            (false, true) => Self::PersistentSequential,
            (true, true) => Self::EphemeralSequential,
        }
    }

    /// Deleted when the session that created it ends.
    pub(crate) fn is_ephemeral(self) -> bool {
        matches!(self, Self::Ephemeral | Self::EphemeralSequential)
    }

    pub(crate) fn is_sequential(self) -> bool {
        matches!(self, Self::PersistentSequential | Self::EphemeralSequential)
    }
}

int_codes! {
    /// The `err` of a reply header, when it is not 0 (success).
    ErrorCode, other Other {
        SystemError = -1,
        RuntimeInconsistency = -2,
        DataInconsistency = -3,
        ConnectionLoss = -4,
        MarshallingError = -5,
        Unimplemented = -6,
        OperationTimeout = -7,
        BadArguments = -8,
        UnknownSession = -12,
        NewConfigNoQuorum = -13,
        ReconfigInProgress = -14,
        ApiError = -100,
        /// The node (or, for a create, its parent) does not exist.
        NoNode = -101,
        /// The session lacks the permission the node's ACL asks for.
        NoAuth = -102,
        /// The version given is not the node's.
        BadVersion = -103,
        NoChildrenForEphemerals = -108,
        NodeExists = -110,
        /// A delete of a node that has children.
        NotEmpty = -111,
        SessionExpired = -112,
        InvalidCallback = -113,
        InvalidAcl = -114,
        /// An `addauth` with a scheme the server does not know; it then closes the
        /// connection. (A digest with a wrong password is not refused: it just grants
        /// nothing.)
        AuthFailed = -115,
        SessionMoved = -118,
        NotReadOnly = -119,
        EphemeralOnLocalSession = -120,
        NoWatcher = -121,
        RequestTimeout = -122,
        ReconfigDisabled = -123,
        SessionClosedRequireSaslAuth = -124,
        QuotaExceeded = -125,
        ThrottledOp = -127,
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Other(code) => write!(f, "error code {code}"),
            known => write!(f, "{known:?} ({})", known.code()),
        }
    }
}

int_codes! {
    /// What a watch notification reports.
    EventType, other Other {
        /// A change of the connection's state, not of a node (client-side only).
        None = -1,
        NodeCreated = 1,
        NodeDeleted = 2,
        NodeDataChanged = 3,
        NodeChildrenChanged = 4,
        DataWatchRemoved = 5,
        ChildWatchRemoved = 6,
        PersistentWatchRemoved = 7,
    }
}

int_codes! {
    /// The connection state a notification carries; the server always sends
    /// `SyncConnected`. The others are the Java client's own, listed for completeness.
    KeeperState, other Other {
        Disconnected = 0,
        NoSyncConnected = 1,
        SyncConnected = 3,
        AuthFailed = 4,
        ConnectedReadOnly = 5,
        SaslAuthenticated = 6,
        Expired = -112,
        Closed = 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_values_of_zookeeper_3_8() {
        let ops = [
            (OpCode::Create, 1),
            (OpCode::GetChildren2, 12),
            (OpCode::Create2, 15),
        ];
        for (op, code) in ops {
            assert_eq!(op.code(), code);
        }
        assert_eq!(OpCode::Auth.code(), 100);
        assert_eq!(OpCode::SetWatches.code(), 101);
        assert_eq!(OpCode::CloseSession.code(), -11);
        assert_eq!(OpCode::Ping.code(), 11);
        assert_eq!(
            OpCode::from_code(7),
            Err(ProtoError::UnknownValue {
                field: "OpCode",
                value: 7
            })
        );
        assert_eq!(ErrorCode::NoNode.code(), -101);
        assert_eq!(ErrorCode::NoAuth.code(), -102);
        assert_eq!(ErrorCode::BadVersion.code(), -103);
        assert_eq!(ErrorCode::NodeExists.code(), -110);
        assert_eq!(ErrorCode::NotEmpty.code(), -111);
        assert_eq!(ErrorCode::SessionExpired.code(), -112);
        assert_eq!(ErrorCode::AuthFailed.code(), -115);
        assert_eq!(ErrorCode::ThrottledOp.code(), -127);
        assert_eq!(EventType::NodeChildrenChanged.code(), 4);
        assert_eq!(KeeperState::SyncConnected.code(), 3);
        assert_eq!(KeeperState::Expired.code(), -112);
        assert_eq!(CreateMode::EphemeralSequential.code(), 3);
    }

    #[test]
    fn every_code_round_trips_and_unknown_ones_are_kept() {
        for &op in OpCode::KNOWN {
            assert_eq!(OpCode::from_code(op.code()), Ok(op));
        }
        for &mode in CreateMode::KNOWN {
            assert_eq!(CreateMode::from_code(mode.code()), Ok(mode));
            assert_eq!(
                CreateMode::new(mode.is_ephemeral(), mode.is_sequential()),
                mode
            );
        }
        assert!(
            CreateMode::from_code(4).is_err(),
            "containers are not modelled"
        );
        for &err in ErrorCode::KNOWN {
            assert_eq!(ErrorCode::from_code(err.code()), err);
        }
        for &ty in EventType::KNOWN {
            assert_eq!(EventType::from_code(ty.code()), ty);
        }
        for &state in KeeperState::KNOWN {
            assert_eq!(KeeperState::from_code(state.code()), state);
        }
        assert_eq!(ErrorCode::from_code(-109), ErrorCode::Other(-109));
        assert_eq!(ErrorCode::Other(-109).code(), -109);
        assert_eq!(EventType::from_code(8), EventType::Other(8));
        assert_eq!(KeeperState::from_code(-1), KeeperState::Other(-1));
        assert_eq!(ErrorCode::NoNode.to_string(), "NoNode (-101)");
        assert_eq!(ErrorCode::Other(-109).to_string(), "error code -109");
    }
}
