//! The JSON wire format's one rule that serde's derive does not keep: a request's
//! object is read only from an object.
//!
//! A derived `Deserialize` also accepts a struct written as an array of its field
//! values (`["sub-001","565380"]`), and an internally tagged enum an array whose first
//! element is the tag (`["customer","contoso",...]`). [`object_only!`] implements
//! `Serialize` and `Deserialize` for a type through a private wire form (a mirror under
//! `#[serde(remote = "...")]`, whose derived functions stay private) and asks the
//! format for a map before handing it to the derived code; [`object`] and
//! [`optional_object`] do the same for a field.
//!
//! Unknown fields are a separate choice, made on each type: a request from a client
//! (`PartnerCheck`, `Actor`, `PartnerLink`) and host configuration (`IncentivePolicy`)
//! add `deny_unknown_fields`; what the crate itself writes and reads back (the records,
//! and its outputs) ignores fields it does not know, so that a record written by a
//! newer release reads in an older one.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// Implements `Serialize` and `Deserialize` for `$type` through `$derived`, a private
/// wire form derived with `#[serde(remote = "$type")]` (or `remote = "Self"` when it is
/// the type itself): serialization as derived, deserialization from an object only.
macro_rules! object_only {
    ($type:ident, $expecting:literal) => {
        $crate::wire::object_only!($type via $type, $expecting);
    };
    ($type:ident via $derived:ident, $expecting:literal) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$derived>::serialize(self, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;
                impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $type;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$type, A::Error> {
                        <$derived>::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_map(ObjectVisitor)
            }
        }
    };
}
pub(crate) use object_only;

/// Reads a field of type `T` from an object only (`deserialize_with`).
pub(crate) fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectVisitor<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_map(ObjectVisitor(PhantomData))
}

/// Reads an optional field of type `T` from an object or `null` (`deserialize_with`).
pub(crate) fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Present<T>(T);
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            object(deserializer).map(Present)
        }
    }
    Ok(Option::<Present<T>>::deserialize(deserializer)?.map(|Present(value)| value))
}
