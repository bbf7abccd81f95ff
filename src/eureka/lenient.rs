//! Lenient readers for the quirks of Eureka's JSON (see [`wire`](super::wire)): a list
//! that may be one object, scalars that may be strings or numbers, ports with their
//! `@enabled` flag, metadata with Eureka's `@class` marker, and [`Lenient`], which
//! lets one instance fail without failing the answer.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A value that decodes into `T`, or what was wrong with it; decoding fails only on
/// broken JSON, which ends the whole answer.
pub(super) struct Lenient<T>(pub(super) Result<T, String>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Ok(Lenient(T::deserialize(&value).map_err(|err| {
            let id = ["instanceId", "hostName"]
                .iter()
                .find_map(|k| value.get(k).and_then(Value::as_str));
            let why = match id {
                Some(id) => format!("instance {id:?}: {err}"),
                None => format!("an instance: {err}"),
            };
            why.chars().take(300).collect()
        })))
    }
}

/// One object, an array of them, or `null`: Eureka's codec writes a one-element list
/// as the element alone.
pub(super) fn one_or_many<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    struct OneOrMany<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrMany<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object, an array or null")
        }
        fn visit_unit<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map)).map(|one| vec![one])
        }
    }
    d.deserialize_any(OneOrMany(PhantomData))
}

/// A string, number or bool as text; `null` as none.
pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Scalar::deserialize(d)?.0.map(|s| s.text()))
}

/// Seconds: a number or a numeric string; `null`, a negative number or a string that
/// is no number as none (the default applies).
pub(super) fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Scalar::deserialize(d)?.0.and_then(|s| s.number()))
}

/// The metadata map, without Eureka's `@class` marker; a value that is not a string
/// kept as its JSON text, `null` left out.
pub(super) fn metadata<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, Value>>::deserialize(d)?.unwrap_or_default();
    Ok(map
        .into_iter()
        .filter(|(k, v)| k != "@class" && !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}

/// A JSON scalar, or `null` (none).
struct Scalar(Option<ScalarValue>);

#[derive(Clone)]
enum ScalarValue {
    Text(String),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
}

impl ScalarValue {
    fn text(self) -> String {
        match self {
            ScalarValue::Text(s) => s,
            ScalarValue::Unsigned(n) => n.to_string(),
            ScalarValue::Signed(n) => n.to_string(),
            ScalarValue::Float(n) => n.to_string(),
            ScalarValue::Bool(b) => b.to_string(),
        }
    }

    /// A whole number that is not negative.
    fn number(self) -> Option<u64> {
        match self {
            ScalarValue::Text(s) => s.trim().parse().ok(),
            ScalarValue::Unsigned(n) => Some(n),
            ScalarValue::Signed(n) => u64::try_from(n).ok(),
            ScalarValue::Float(_) | ScalarValue::Bool(_) => None,
        }
    }

    /// `true` (any case) as Java's `Boolean.valueOf` reads it; anything else false.
    fn flag(self) -> bool {
        match self {
            ScalarValue::Bool(b) => b,
            ScalarValue::Text(s) => s.trim().eq_ignore_ascii_case("true"),
            _ => false,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, bool or null")
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_str<E>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(ScalarValue::Text(s.to_owned()))))
            }
            fn visit_string<E>(self, s: String) -> Result<Scalar, E> {
                Ok(Scalar(Some(ScalarValue::Text(s))))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(ScalarValue::Unsigned(n))))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(ScalarValue::Signed(n))))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(ScalarValue::Float(n))))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(ScalarValue::Bool(b))))
            }
        }
        d.deserialize_any(V)
    }
}

/// `port` / `securePort`: `{"$":N,"@enabled":..}` or a bare number (enabled).
pub(super) struct Port {
    number: Option<u16>,
    /// `@enabled`; when left out, the field's default (Eureka's: the plain port on,
    /// the secure port off).
    enabled: Option<bool>,
}

impl Port {
    /// The port in use: enabled, with a number above 0.
    pub(super) fn resolve(port: Option<Port>, enabled_by_default: bool) -> Option<u16> {
        let port = port?;
        match port.enabled.unwrap_or(enabled_by_default) {
            true => port.number.filter(|n| *n > 0),
            false => None,
        }
    }

    /// A port number from a scalar: a number or a numeric string of 0..=65535.
    fn number<E: de::Error>(value: Option<ScalarValue>) -> Result<Option<u16>, E> {
        let Some(value) = value else { return Ok(None) };
        match value.clone().number().and_then(|n| u16::try_from(n).ok()) {
            Some(n) => Ok(Some(n)),
            None => Err(E::custom(format_args!(
                "port {:?} is not a number in 0..=65535",
                value.text()
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let scalar = |v: Option<&Value>| -> Result<Option<ScalarValue>, D::Error> {
            match v {
                None => Ok(None),
                Some(v) => Scalar::deserialize(v)
                    .map(|s| s.0)
                    .map_err(de::Error::custom),
            }
        };
        match &value {
            Value::Object(o) => Ok(Port {
                number: Port::number(scalar(o.get("$"))?)?,
                enabled: scalar(o.get("@enabled"))?.map(ScalarValue::flag),
            }),
            Value::Array(_) => Err(de::Error::custom(
                "a port is an object or a number, not an array",
            )),
            other => Ok(Port {
                number: Port::number(scalar(Some(other))?)?,
                enabled: Some(true),
            }),
        }
    }
}
