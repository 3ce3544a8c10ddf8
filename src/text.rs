//! Free text in the records (names, locations, email addresses) is bounded, so that no
//! record grows without limit: a 10 MB partner name is refused with a [`TextError`].
//!
//! The bound is kept where text crosses the wire, in both directions: a record with a
//! longer text neither deserializes nor serializes, so a store never writes a row it
//! could not read back (the SQL stores answer such a write with a
//! [`StoreError::Backend`](crate::StoreError::Backend) naming the field, and write
//! nothing). Values built in code ([`Partner::new`](crate::Partner::new),
//! [`Subscription::new`](crate::Subscription::new)) are not checked until then;
//! [`check`] lets a host check its own input first.

/// The most characters a name (of a partner, a subscription, a cloud service) or a
/// partner's location may have.
pub const MAX_NAME_CHARS: usize = 256;

/// The most characters a contact email address may have (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Why a text field is refused.
///
/// ```
/// use dpor::text::{self, TextError};
///
/// assert_eq!(text::check("name", "Fabrikam", text::MAX_NAME_CHARS), Ok(()));
/// let long = "x".repeat(300);
/// assert_eq!(
///     text::check("name", &long, text::MAX_NAME_CHARS),
///     Err(TextError::TooLong { field: "name", length: 300, max: 256 })
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// The text has more characters than allowed.
    #[error("the {field} has {length} characters, at most {max} are allowed")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// The number of characters given.
        length: usize,
        /// The most allowed.
        max: usize,
    },
}

/// Checks that `value`, the content of `field`, has at most `max` characters.
///
/// # Errors
///
/// [`TextError::TooLong`].
pub fn check(field: &'static str, value: &str, max: usize) -> Result<(), TextError> {
    // At most `max` bytes is at most `max` characters: the common case costs nothing.
    if value.len() > max && value.chars().nth(max).is_some() {
        return Err(TextError::TooLong {
            field,
            length: value.chars().count(),
            max,
        });
    }
    Ok(())
}

/// One bounded text field: its [`check`] (`crate::text::name::check`), and serde
/// helpers: `#[serde(with = "crate::text::name")]` on a `String`, `Box<str>` or
/// `SmolStr`, `with = "crate::text::name::option"` on an `Option` of one.
macro_rules! bounded {
    ($module:ident, $field:literal, $max:expr) => {
        pub(crate) mod $module {
            use serde::{Deserialize, Deserializer, Serializer};

            /// [`check`](super::check) with this field's name and bound.
            pub(crate) fn check(value: &str) -> Result<(), super::TextError> {
                super::check($field, value, $max)
            }

            pub(crate) fn serialize<S: Serializer, T: AsRef<str>>(
                value: &T,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                check(value.as_ref()).map_err(serde::ser::Error::custom)?;
                serializer.serialize_str(value.as_ref())
            }

            pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: From<String>>(
                deserializer: D,
            ) -> Result<T, D::Error> {
                let value = String::deserialize(deserializer)?;
                check(&value).map_err(serde::de::Error::custom)?;
                Ok(T::from(value))
            }

            /// The same for an optional field (`null` when absent).
            #[allow(dead_code)] // not every bounded field has an optional use
            pub(crate) mod option {
                use serde::{Deserialize, Deserializer, Serializer};

                pub(crate) fn serialize<S: Serializer, T: AsRef<str>>(
                    value: &Option<T>,
                    serializer: S,
                ) -> Result<S::Ok, S::Error> {
                    match value {
                        Some(value) => super::serialize(value, serializer),
                        None => serializer.serialize_none(),
                    }
                }

                pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: From<String>>(
                    deserializer: D,
                ) -> Result<Option<T>, D::Error> {
                    #[derive(Deserialize)]
                    struct Bounded(#[serde(with = "super")] String);
                    Ok(Option::<Bounded>::deserialize(deserializer)?.map(|Bounded(v)| T::from(v)))
                }
            }
        }
    };
}

bounded!(name, "name", super::MAX_NAME_CHARS);
bounded!(location, "location", super::MAX_NAME_CHARS);
bounded!(email, "contact email", super::MAX_EMAIL_CHARS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_counts_characters_not_bytes() {
        assert_eq!(check("name", &"é".repeat(256), 256), Ok(()));
        assert_eq!(
            check("name", &"é".repeat(257), 256),
            Err(TextError::TooLong {
                field: "name",
                length: 257,
                max: 256
            })
        );
    }
}
