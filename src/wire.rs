//! The JSON wire format's one rule that serde's derive does not keep: an object is
//! read only from an object.
//!
//! A derived `Deserialize` also accepts a struct written as an array of its field
//! values (`["sub-001","contoso",...]`), and an internally tagged enum an array whose
//! first element is the tag. [`object_only!`] replaces the derived impl of a type with
//! one that asks for a map, then hands it to the derived code. The type keeps its
//! derive under `#[serde(remote = "Self")]`, which turns the derived functions into
//! inherent `serialize` / `deserialize` functions that the generated impls call.
//!
//! Unknown fields are a separate choice, made on each type: a request from a client
//! (`PartnerCheck`, `Actor`, `PartnerLink`) and host configuration (`IncentivePolicy`)
//! add `deny_unknown_fields`; what the crate itself writes and reads back (the records,
//! and its outputs) ignores fields it does not know, so that a record written by a
//! newer release reads in an older one.

/// Implements `Serialize` and `Deserialize` for a type whose derive carries
/// `#[serde(remote = "Self")]`: serialization as derived, deserialization from a JSON
/// object only.
macro_rules! object_only {
    ($type:ty, $expecting:literal) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$type>::serialize(self, serializer)
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
                        <$type>::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_map(ObjectVisitor)
            }
        }
    };
}
pub(crate) use object_only;
