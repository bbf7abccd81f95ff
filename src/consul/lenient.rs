//! JSON values that may not fit their type, for decoding a list whose items are
//! checked one by one: [`Field`] (a scalar) and [`Nested`] (an object or array) accept
//! any JSON value and record a value of the wrong type or range instead of failing,
//! so the decoder is never left in the middle of an item; [`Fit`] then turns a
//! decoded item into its typed form, or names its first value that does not fit
//! ([`Misfit`]: `Service.Tags[1]: invalid type: ...`).
//!
//! Decoding still fails on broken JSON, a key twice in one object and read errors:
//! those end the whole list.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Unexpected, Visitor};

/// A scalar field: its value, or what was wrong with it (a value of another type, a
/// number out of range). JSON `null` counts as absent.
#[derive(Debug)]
pub(super) struct Field<T>(pub(super) Result<T, String>);

/// An object or array field (`T` says which): its value, or what was wrong with it.
/// Inside, every part is a [`Field`] or a `Nested` again, so decoding it fails only
/// on errors that end the whole answer. JSON `null` counts as absent (empty).
#[derive(Debug)]
pub(super) struct Nested<T>(pub(super) Result<T, String>);

impl<T: Default> Default for Field<T> {
    fn default() -> Self {
        Field(Ok(T::default()))
    }
}

impl<T: Default> Default for Nested<T> {
    fn default() -> Self {
        Nested(Ok(T::default()))
    }
}

impl<T> Field<T> {
    /// For a field that must be there.
    pub(super) fn missing() -> Self {
        Field(Err("missing".into()))
    }
}

impl<T> Nested<T> {
    /// For a part that must be there.
    pub(super) fn missing() -> Self {
        Nested(Err("missing".into()))
    }
}

/// What a [`Nested`] value is in JSON: an object unless it says otherwise.
pub(super) trait Shape {
    /// True for an object, false for an array.
    const OBJECT: bool = true;
}

impl<T> Shape for Vec<T> {
    const OBJECT: bool = false;
}

impl<V> Shape for BTreeMap<String, V> {}

/// The message for a value of the wrong kind, in serde's words.
fn wrong(found: Unexpected<'_>, expected: &dyn de::Expected) -> String {
    <de::value::Error as de::Error>::invalid_type(found, expected).to_string()
}

/// Reads and drops the rest of an array.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads and drops the rest of an object.
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Field<T> {
    fn deserialize<D: de::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(FieldVisitor(PhantomData))
    }
}

struct FieldVisitor<T>(PhantomData<T>);

impl<T> FieldVisitor<T> {
    /// Gives a scalar, already read, to `T`: a mismatch is recorded, not raised.
    fn scalar<'de, E: de::Error>(
        value: impl IntoDeserializer<'de, de::value::Error>,
    ) -> Result<Field<T>, E>
    where
        T: Deserialize<'de>,
    {
        Ok(Field(
            T::deserialize(value.into_deserializer()).map_err(|e| e.to_string()),
        ))
    }
}

impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for FieldVisitor<T> {
    type Value = Field<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or number")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Field<T>, E> {
        Self::scalar(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Field<T>, E> {
        Self::scalar(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field<T>, E> {
        Self::scalar(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Field<T>, E> {
        Self::scalar(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field<T>, E> {
        Self::scalar(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Field<T>, E> {
        Self::scalar(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Field<T>, E> {
        Ok(Field::default())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field<T>, A::Error> {
        skip_seq(seq)?;
        Ok(Field(Err(wrong(Unexpected::Seq, &self))))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field<T>, A::Error> {
        skip_map(map)?;
        Ok(Field(Err(wrong(Unexpected::Map, &self))))
    }
}

impl<'de, T: Deserialize<'de> + Default + Shape> Deserialize<'de> for Nested<T> {
    fn deserialize<D: de::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(NestedVisitor(PhantomData))
    }
}

struct NestedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Default + Shape> Visitor<'de> for NestedVisitor<T> {
    type Value = Nested<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if T::OBJECT { "an object" } else { "an array" })
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Nested<T>, E> {
        Ok(Nested(Err(wrong(Unexpected::Bool(v), &self))))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Nested<T>, E> {
        Ok(Nested(Err(wrong(Unexpected::Signed(v), &self))))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Nested<T>, E> {
        Ok(Nested(Err(wrong(Unexpected::Unsigned(v), &self))))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Nested<T>, E> {
        Ok(Nested(Err(wrong(Unexpected::Float(v), &self))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Nested<T>, E> {
        Ok(Nested(Err(wrong(Unexpected::Str(v), &self))))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Nested<T>, E> {
        Ok(Nested::default())
    }
    // `T`'s own errors end the answer: its parts never fail on a value that does not
    // fit, so what reaches here is broken JSON or a read error.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Nested<T>, A::Error> {
        if T::OBJECT {
            skip_seq(seq)?;
            return Ok(Nested(Err(wrong(Unexpected::Seq, &self))));
        }
        T::deserialize(SeqAccessDeserializer::new(&mut seq)).map(|v| Nested(Ok(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Nested<T>, A::Error> {
        if !T::OBJECT {
            skip_map(map)?;
            return Ok(Nested(Err(wrong(Unexpected::Map, &self))));
        }
        T::deserialize(MapAccessDeserializer::new(&mut map)).map(|v| Nested(Ok(v)))
    }
}

/// The first part of an entry that does not fit: where, and why.
#[derive(Debug)]
pub(super) struct Misfit {
    pub(super) path: String,
    pub(super) reason: String,
}

impl Misfit {
    /// The same misfit one level up: inside `name`.
    pub(super) fn at(mut self, name: &str) -> Misfit {
        self.path = match self.path.as_bytes().first() {
            None => name.to_owned(),
            Some(b'[') => format!("{name}{}", self.path),
            Some(_) => format!("{name}.{}", self.path),
        };
        self
    }
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// A decoded part that may hold values that do not fit: its typed form, or the first
/// value that does not fit.
pub(super) trait Fit {
    type Out;
    fn fit(self) -> Result<Self::Out, Misfit>;
}

/// `part`, fitted, as the field `name`.
pub(super) fn field<F: Fit>(part: F, name: &str) -> Result<F::Out, Misfit> {
    part.fit().map_err(|m| m.at(name))
}

impl<T> Fit for Field<T> {
    type Out = T;
    fn fit(self) -> Result<T, Misfit> {
        self.0.map_err(|reason| Misfit {
            path: String::new(),
            reason,
        })
    }
}

impl<T: Fit> Fit for Nested<T> {
    type Out = T::Out;
    fn fit(self) -> Result<T::Out, Misfit> {
        Field(self.0).fit()?.fit()
    }
}

impl<T: Fit> Fit for Vec<T> {
    type Out = Vec<T::Out>;
    fn fit(self) -> Result<Vec<T::Out>, Misfit> {
        let parts = self.into_iter().enumerate();
        parts
            .map(|(i, part)| part.fit().map_err(|m| m.at(&format!("[{i}]"))))
            .collect()
    }
}

impl<T: Fit> Fit for BTreeMap<String, T> {
    type Out = BTreeMap<String, T::Out>;
    fn fit(self) -> Result<BTreeMap<String, T::Out>, Misfit> {
        self.into_iter()
            .map(|(key, part)| match part.fit() {
                Ok(value) => Ok((key, value)),
                Err(m) => Err(m.at(&format!("[{key:?}]"))),
            })
            .collect()
    }
}

impl<T: Fit> Fit for Option<T> {
    type Out = Option<T::Out>;
    fn fit(self) -> Result<Option<T::Out>, Misfit> {
        self.map(Fit::fit).transpose()
    }
}
