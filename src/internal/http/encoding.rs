//! serde helpers for the JSON shapes of gRPC gateways (etcd): bytes as standard base64
//! strings (coded by `internal::base64`), and 64-bit integers as decimal strings
//! (protobuf's JSON mapping writes int64 and uint64 that way; a number is accepted too),
//! in one place.
#![cfg_attr(not(feature = "etcd"), allow(dead_code))]

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;

use crate::internal::base64::{base64_decode, base64_encode};

/// `#[serde(with = "base64")]` for `Vec<u8>` fields.
pub(crate) mod base64 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64_encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        base64_decode(&text).map_err(de::Error::custom)
    }
}

/// `#[serde(with = "int64")]` for `i64` fields: written as a decimal string, read from
/// a string or a number.
pub(crate) mod int64 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(n: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(n)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        struct Int64;
        impl Visitor<'_> for Int64 {
            type Value = i64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-bit integer, as a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
                v.parse()
                    .map_err(|_| E::custom(format_args!("{v:.40?} is not a 64-bit integer")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
                Ok(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
                i64::try_from(v).map_err(|_| E::custom(format_args!("{v} is over i64's range")))
            }
        }
        d.deserialize_any(Int64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_shapes() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Kv {
            #[serde(with = "base64")]
            key: Vec<u8>,
            #[serde(with = "int64")]
            revision: i64,
        }
        let kv = Kv {
            key: b"/services/api/10.0.0.1:80".to_vec(),
            revision: 9_007_199_254_740_993, // past f64's exact integers
        };
        let json = serde_json::to_string(&kv).unwrap();
        assert_eq!(
            json,
            r#"{"key":"L3NlcnZpY2VzL2FwaS8xMC4wLjAuMTo4MA==","revision":"9007199254740993"}"#
        );
        assert_eq!(serde_json::from_str::<Kv>(&json).unwrap(), kv);
        let number: Kv = serde_json::from_str(r#"{"key":"","revision":7}"#).unwrap();
        assert_eq!(number.revision, 7);
        let err = serde_json::from_str::<Kv>(r#"{"key":"","revision":"x7"}"#).unwrap_err();
        assert!(err.to_string().contains("not a 64-bit integer"), "{err}");
    }
}
