//! Identifiers: [`MpnId`], [`SubscriptionId`], [`CustomerId`], [`NotificationId`] and
//! the errors that say why a string is not one.
//!
//! Every identifier is a validated newtype: the only ways to build one go through
//! the same checks (`parse`/`new`, [`FromStr`], [`TryFrom`] and serde
//! deserialization), so a value of these types is always valid. All of them
//! serialize as a JSON string and refuse anything else (a JSON number is not an id).

use smol_str::SmolStr;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The fewest digits an [`MpnId`] may have.
pub const MPN_ID_MIN_DIGITS: usize = 5;
/// The most digits an [`MpnId`] may have.
pub const MPN_ID_MAX_DIGITS: usize = 10;
/// The most characters a [`SubscriptionId`] or [`CustomerId`] may have.
pub const ID_MAX_CHARS: usize = 128;
/// The most characters a [`NotificationId`] may have: room for a full
/// [`SubscriptionId`], a `#` and a 64-bit sequence number.
pub const NOTIFICATION_ID_MAX_CHARS: usize = 160;

/// The longest [`UserRef`], in characters.
pub const USER_REF_MAX_CHARS: usize = 256;

/// A partner's Microsoft Partner Network ID ("MPN ID", now "Partner ID").
///
/// The syntax is a front-door check only: 5 to 10 ASCII digits, leading zeros kept,
/// surrounding whitespace trimmed. Whether a partner with that ID exists is for the
/// [`PartnerDirectory`](crate::PartnerDirectory) to say ("Check ID").
///
/// `MpnId` is `Copy` and holds its digits inline: no allocation.
///
/// # Examples
///
/// ```
/// use dpor::{MpnId, MpnIdError};
///
/// let id = MpnId::parse(" 0565380 ")?;
/// assert_eq!(id.as_str(), "0565380"); // trimmed, leading zero kept
/// assert_eq!(id.to_string().parse::<MpnId>()?, id);
///
/// assert_eq!(MpnId::parse("   "), Err(MpnIdError::Empty));
/// assert_eq!(
///     MpnId::parse("56a380"),
///     Err(MpnIdError::InvalidCharacter { index: 2, character: 'a' })
/// );
/// assert_eq!(MpnId::parse("1234"), Err(MpnIdError::WrongLength { length: 4 }));
/// # Ok::<(), MpnIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MpnId {
    // Invariant: `digits[..len]` are ASCII digits, `len` is within
    // MPN_ID_MIN_DIGITS..=MPN_ID_MAX_DIGITS and every byte after `len` is 0, so that
    // the derived `Eq` and `Hash` agree with `as_str`.
    digits: [u8; MPN_ID_MAX_DIGITS],
    len: u8,
}

/// Why a string is not an [`MpnId`].
///
/// The checks run in this order on the input with surrounding whitespace removed:
/// [`Empty`](Self::Empty), then the first character that is not an ASCII digit
/// ([`InvalidCharacter`](Self::InvalidCharacter)), then the number of digits
/// ([`WrongLength`](Self::WrongLength)).
///
/// The messages are written for the customer who typed the ID.
///
/// # Examples
///
/// ```
/// use dpor::{MpnId, MpnIdError};
///
/// let error = MpnId::parse("56538O").err();
/// assert_eq!(error, Some(MpnIdError::InvalidCharacter { index: 5, character: 'O' }));
/// // Show the message next to the "Microsoft Partner ID" field as it is:
/// assert_eq!(
///     error.map(|e| e.to_string()).as_deref(),
///     Some("a Partner ID (MPN ID) has digits only: 'O' at position 6 is not a digit")
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum MpnIdError {
    /// Nothing was entered, or only whitespace.
    #[error("enter the partner's Partner ID (MPN ID): 5 to 10 digits")]
    Empty,
    /// A character that is not an ASCII digit `0`-`9`.
    ///
    /// `index` is its 0-based position, counted in characters of the input as
    /// given (leading whitespace included).
    #[error(
        "a Partner ID (MPN ID) has digits only: {character:?} at position {} is not a digit",
        index.saturating_add(1)
    )]
    InvalidCharacter {
        /// 0-based position of the character in the input as given, in characters.
        index: usize,
        /// The offending character.
        character: char,
    },
    /// All digits, but too few or too many.
    #[error("a Partner ID (MPN ID) has 5 to 10 digits, this one has {length}")]
    WrongLength {
        /// The number of digits entered.
        length: usize,
    },
}

impl MpnId {
    /// Parses what a customer typed into the "Microsoft Partner ID" field.
    ///
    /// # Errors
    ///
    /// [`MpnIdError`] says what is wrong with `input`; see its docs for the order of
    /// the checks. Never panics, whatever the input.
    #[inline]
    pub fn parse(input: &str) -> Result<MpnId, MpnIdError> {
        let bytes = input.as_bytes();
        // Unicode-aware trimming only when an end is not a visible ASCII character.
        let graphic = |b: Option<&u8>| b.is_some_and(u8::is_ascii_graphic);
        let trimmed = if graphic(bytes.first()) && graphic(bytes.last()) {
            input
        } else {
            input.trim()
        };
        if trimmed.is_empty() {
            return Err(MpnIdError::Empty);
        }
        let source = trimmed.as_bytes();
        if source.len() > MPN_ID_MAX_DIGITS {
            // Too long, unless a non-digit comes first.
            return Err(match source.iter().position(|b| !b.is_ascii_digit()) {
                Some(offset) => invalid_character(input, trimmed, offset),
                None => MpnIdError::WrongLength {
                    length: source.len(),
                },
            });
        }
        // One pass checks and copies each digit, zero-padded.
        let mut digits = [0; MPN_ID_MAX_DIGITS];
        for (offset, (digit, &b)) in digits.iter_mut().zip(source).enumerate() {
            if !b.is_ascii_digit() {
                return Err(invalid_character(input, trimmed, offset));
            }
            *digit = b;
        }
        let length = source.len();
        if length < MPN_ID_MIN_DIGITS {
            return Err(MpnIdError::WrongLength { length });
        }
        Ok(MpnId {
            digits,
            len: length as u8,
        })
    }

    /// The canonical digits, leading zeros kept.
    pub fn as_str(&self) -> &str {
        // The digits are ASCII by construction, so this never takes the error arm.
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// The error for the first non-digit, at byte `offset` of `trimmed` (a slice of
/// `input`), with its index counted in characters of `input`.
#[cold]
fn invalid_character(input: &str, trimmed: &str, offset: usize) -> MpnIdError {
    // Everything before `offset` in `trimmed` is ASCII digits: one character a byte.
    let leading = input.len() - input.trim_start().len();
    let index = input[..leading].chars().count() + offset;
    let character = trimmed[offset..].chars().next().unwrap_or_default();
    MpnIdError::InvalidCharacter { index, character }
}

/// Why a string is not a [`SubscriptionId`], [`CustomerId`] or [`NotificationId`].
///
/// The checks run in this order on the input as given (nothing is trimmed):
/// [`Empty`](Self::Empty), then the first whitespace, control or invisible formatting character
/// ([`InvalidCharacter`](Self::InvalidCharacter)), then the length
/// ([`TooLong`](Self::TooLong)).
///
/// # Examples
///
/// ```
/// use dpor::{CustomerId, IdError, SubscriptionId};
///
/// assert_eq!(CustomerId::new("   "), Err(IdError::Empty));
/// assert_eq!(SubscriptionId::new("x".repeat(129)), Err(IdError::TooLong { length: 129, max: 128 }));
///
/// let error = SubscriptionId::new("sub 1").err();
/// assert_eq!(error, Some(IdError::InvalidCharacter { index: 3, character: ' ' }));
/// assert_eq!(
///     error.map(|e| e.to_string()).as_deref(),
///     Some("the id may not contain whitespace, control or invisible formatting characters: ' ' at position 4")
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum IdError {
    /// The id is empty or only whitespace.
    #[error("the id is empty")]
    Empty,
    /// The id has more characters than allowed.
    #[error("the id has {length} characters, at most {max} are allowed")]
    TooLong {
        /// The number of characters given.
        length: usize,
        /// The most allowed.
        max: usize,
    },
    /// A whitespace, control or invisible formatting character (Unicode category Cf:
    /// zero-width and bidirectional controls, the byte order mark, the soft hyphen):
    /// such a character would make an id that looks like another.
    #[error("the id may not contain whitespace, control or invisible formatting characters: {character:?} at position {}", index.saturating_add(1))]
    InvalidCharacter {
        /// 0-based position of the character, in characters.
        index: usize,
        /// The offending character.
        character: char,
    },
}

/// Unicode's general category Cf ("format"), as of Unicode 16.0: characters that are
/// invisible or steer the display of their neighbours (U+200B zero width space, U+200E
/// and U+200F direction marks, U+202A..U+202E and U+2066..U+2069 bidirectional
/// embeddings and isolates, U+2060 word joiner, U+FEFF byte order mark, U+00AD soft
/// hyphen, the tag characters, ...). Sorted ranges, inclusive.
const FORMAT_CHARACTERS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `character` is in Unicode's general category Cf ([`FORMAT_CHARACTERS`]).
fn is_format(character: char) -> bool {
    FORMAT_CHARACTERS
        .binary_search_by(|&(first, last)| {
            if last < character {
                std::cmp::Ordering::Less
            } else if first > character {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

fn validate_opaque(value: &str, max: usize) -> Result<(), IdError> {
    // The common case, printable ASCII only: one pass over the bytes, no table.
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic()) {
        return match value.len() {
            length if length > max => Err(IdError::TooLong { length, max }),
            _ => Ok(()),
        };
    }
    if value.trim().is_empty() {
        return Err(IdError::Empty);
    }
    let mut length = 0;
    for (index, character) in value.chars().enumerate() {
        let invisible = !character.is_ascii() && is_format(character);
        if character.is_whitespace() || character.is_control() || invisible {
            return Err(IdError::InvalidCharacter { index, character });
        }
        length += 1;
    }
    if length > max {
        return Err(IdError::TooLong { length, max });
    }
    Ok(())
}

/// The traits every string-backed id shares: `Display`, `Debug`, `FromStr`,
/// `TryFrom<&str>`, `TryFrom<String>`, `AsRef<str>`, ordering by the string, and
/// serde as a validated string.
macro_rules! string_id {
    ($name:ident, $error:ty, $build:expr) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad` honours width and alignment: `{:<10}` lines ids up in tables.
                f.pad(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name))
                    .field(&self.as_str())
                    .finish()
            }
        }

        impl FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $build(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $error;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                $build(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $build(s.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a string holding a valid ", stringify!($name)))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $build(v).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

string_id!(MpnId, MpnIdError, |s: &str| MpnId::parse(s));

/// Declares an opaque id type, validated on the way in.
///
/// It holds a [`SmolStr`]: up to 23 bytes inline (no allocation, and a clone is a copy
/// that touches no shared reference count, so two threads cloning one customer's id
/// do not contend), longer ones in a shared `Arc<str>`. It hashes as its text.
macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(SmolStr);

        impl $name {
            /// Validates `value` and wraps it.
            ///
            /// # Errors
            ///
            /// [`IdError`] when `value` is empty or blank, holds a whitespace, control or
            /// invisible formatting (Unicode Cf) character, or is too long.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                Self::from_text(&value.into())
            }

            /// [`new`](Self::new) from borrowed text: what `FromStr` and `TryFrom<&str>`
            /// use, with no intermediate `String`.
            fn from_text(value: &str) -> Result<Self, IdError> {
                validate_opaque(value, $max)?;
                Ok(Self(SmolStr::new(value)))
            }

            /// The id as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        string_id!($name, IdError, |s: &str| $name::from_text(s));
    };
}

opaque_id!(
    /// The id of one cloud subscription: the unit a partner of record is set on.
    ///
    /// Opaque to the crate: 1 to 128 characters, none of them whitespace, control or
    /// invisible formatting characters (Unicode category Cf, such as U+200B zero width
    /// space or the bidirectional controls), so that no two ids look alike. Letters of
    /// any script are welcome. Up to 23 bytes it is held inline: no allocation.
    ///
    /// ```
    /// use dpor::{IdError, SubscriptionId};
    ///
    /// let id = SubscriptionId::new("sub-001")?;
    /// assert_eq!(id.as_str(), "sub-001");
    /// assert_eq!(SubscriptionId::new(""), Err(IdError::Empty));
    /// assert!(matches!(SubscriptionId::new("a b"), Err(IdError::InvalidCharacter { index: 1, .. })));
    /// // A look-alike: "contoso" followed by an invisible zero width space.
    /// assert_eq!(
    ///     SubscriptionId::new("contoso\u{200b}"),
    ///     Err(IdError::InvalidCharacter { index: 7, character: '\u{200b}' })
    /// );
    /// assert!(SubscriptionId::new("подписка-1").is_ok());
    /// # Ok::<(), IdError>(())
    /// ```
    SubscriptionId,
    ID_MAX_CHARS
);

opaque_id!(
    /// The id of a customer (tenant): the owner of subscriptions.
    ///
    /// Same rules as [`SubscriptionId`].
    ///
    /// ```
    /// use dpor::CustomerId;
    ///
    /// let contoso: CustomerId = "contoso".parse()?;
    /// assert_eq!(contoso.to_string(), "contoso");
    /// # Ok::<(), dpor::IdError>(())
    /// ```
    CustomerId,
    ID_MAX_CHARS
);

opaque_id!(
    /// The host's reference to one of a customer's users: its user id or principal
    /// name, as the host's sign-in knows it. Opaque to the crate, carried by
    /// [`Actor::Customer`](crate::Actor::Customer) and recorded in the events that user
    /// causes ([`Cause`](crate::event::Cause)), for audits.
    ///
    /// Same rules as [`SubscriptionId`], up to 256 characters (an e-mail address or a
    /// user principal name fits).
    ///
    /// ```
    /// use dpor::{IdError, UserRef};
    ///
    /// let alice = UserRef::new("alice@contoso.example")?;
    /// assert_eq!(alice.as_str(), "alice@contoso.example");
    /// assert!(UserRef::new("alice smith").is_err());
    /// # Ok::<(), IdError>(())
    /// ```
    UserRef,
    USER_REF_MAX_CHARS
);

opaque_id!(
    /// The id of one outbox [`Notification`](crate::Notification).
    ///
    /// The service derives it from the event the notification tells of, as
    /// `"{subscription}#{sequence}"` (see [`NotificationId::for_event`]): unique within
    /// a repository and identical across delivery retries, so a notifier can drop
    /// duplicates. Same rules as [`SubscriptionId`], up to 160 characters.
    ///
    /// ```
    /// use dpor::{NotificationId, SubscriptionId};
    ///
    /// let id = NotificationId::for_event(&SubscriptionId::new("sub-1")?, 3);
    /// assert_eq!(id.as_str(), "sub-1#3");
    /// # Ok::<(), dpor::IdError>(())
    /// ```
    NotificationId,
    NOTIFICATION_ID_MAX_CHARS
);

impl NotificationId {
    /// The id of the notification for event `sequence` of `subscription`.
    ///
    /// Always valid: a subscription id is at most 128 characters without whitespace,
    /// and `#` and the digits of a `u64` add at most 21.
    pub fn for_event(subscription: &SubscriptionId, sequence: u64) -> NotificationId {
        NotificationId(smol_str::format_smolstr!("{subscription}#{sequence}"))
    }

    /// The subscription and the event sequence this id names, when it is exactly what
    /// [`for_event`](Self::for_event) writes for them (digits with no sign and no
    /// leading zero, after the last `#`).
    pub(crate) fn event(&self) -> Option<(&str, u64)> {
        let (subscription, digits) = self.0.rsplit_once('#')?;
        let canonical = digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !canonical {
            return None;
        }
        Some((subscription, digits.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_built_with_any_index_displays() {
        let mpn = MpnIdError::InvalidCharacter {
            index: usize::MAX,
            character: 'x',
        };
        assert!(mpn.to_string().contains(&usize::MAX.to_string()));
        let id = IdError::InvalidCharacter {
            index: usize::MAX,
            character: '\u{200b}',
        };
        assert!(id.to_string().contains(&usize::MAX.to_string()));
    }

    #[test]
    fn mpn_id_keeps_leading_zeros_and_trims() {
        let id = MpnId::parse("\t 0012345\n").unwrap();
        assert_eq!(id.as_str(), "0012345");
    }

    #[test]
    fn mpn_id_accepts_five_to_ten_digits() {
        assert!(MpnId::parse("12345").is_ok());
        assert!(MpnId::parse("1234567890").is_ok());
        assert_eq!(
            MpnId::parse("12345678901"),
            Err(MpnIdError::WrongLength { length: 11 })
        );
    }

    #[test]
    fn mpn_id_reports_index_in_input_as_given() {
        assert_eq!(
            MpnId::parse("  12x45"),
            Err(MpnIdError::InvalidCharacter {
                index: 4,
                character: 'x'
            })
        );
        assert_eq!(
            MpnId::parse("é12345"),
            Err(MpnIdError::InvalidCharacter {
                index: 0,
                character: 'é'
            })
        );
        // Interior whitespace is not trimmed away.
        assert_eq!(
            MpnId::parse("123 45"),
            Err(MpnIdError::InvalidCharacter {
                index: 3,
                character: ' '
            })
        );
    }

    #[test]
    fn mpn_id_rejects_full_width_digits() {
        assert_eq!(
            MpnId::parse("１２３４５"),
            Err(MpnIdError::InvalidCharacter {
                index: 0,
                character: '１'
            })
        );
    }

    #[test]
    fn mpn_id_invalid_character_comes_before_length() {
        assert!(matches!(
            MpnId::parse("1a"),
            Err(MpnIdError::InvalidCharacter { index: 1, .. })
        ));
    }

    #[test]
    fn mpn_id_orders_as_its_string() {
        let a = MpnId::parse("100000").unwrap();
        let b = MpnId::parse("99999").unwrap();
        assert!(a < b);
    }

    #[test]
    fn mpn_id_serializes_as_validated_string() {
        let id = MpnId::parse("565380").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"565380\"");
        assert_eq!(serde_json::from_str::<MpnId>("\"565380\"").unwrap(), id);
        assert!(serde_json::from_str::<MpnId>("\"abc\"").is_err());
        assert!(serde_json::from_str::<MpnId>("565380").is_err());
    }

    #[test]
    fn opaque_id_rules() {
        assert_eq!(CustomerId::new("   "), Err(IdError::Empty));
        assert_eq!(
            CustomerId::new("a\u{7}"),
            Err(IdError::InvalidCharacter {
                index: 1,
                character: '\u{7}'
            })
        );
        assert_eq!(
            CustomerId::new("é".repeat(129)),
            Err(IdError::TooLong {
                length: 129,
                max: 128
            })
        );
        assert!(CustomerId::new("é".repeat(128)).is_ok());
    }

    #[test]
    fn look_alike_ids_are_refused_naming_the_invisible_character() {
        let named = [
            '\u{200B}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{2066}',
            '\u{2069}',
            '\u{061C}',
            '\u{180E}',
            '\u{E0001}',
            '\u{E007F}',
            '\u{1343F}',
        ];
        for character in named {
            for id in [format!("contoso{character}"), format!("{character}contoso")] {
                let index = id.chars().position(|c| c == character).unwrap();
                let expected = IdError::InvalidCharacter { index, character };
                assert_eq!(CustomerId::new(id.as_str()), Err(expected.clone()));
                assert_eq!(SubscriptionId::new(id.as_str()), Err(expected));
                let json = serde_json::to_string(&id).unwrap();
                assert!(serde_json::from_str::<CustomerId>(&json).is_err());
            }
        }
    }

    #[test]
    fn every_format_character_range_is_refused_at_both_ends() {
        for &(first, last) in FORMAT_CHARACTERS {
            for character in [first, last] {
                assert!(
                    SubscriptionId::new(format!("a{character}")).is_err(),
                    "{character:?}"
                );
            }
        }
        // Sorted, so that the binary search finds every range.
        assert!(FORMAT_CHARACTERS.windows(2).all(|w| w[0].1 < w[1].0));
    }

    #[test]
    fn visible_letters_of_any_script_stay_valid() {
        for id in [
            "contoso",
            "подписка-1",
            "訂閱-001",
            "اشتراك",
            "מנוי",
            "सदस्यता",
            "Ωmega_9",
            "e\u{301}", // a combining accent is visible (category Mn, not Cf)
        ] {
            assert!(SubscriptionId::new(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn opaque_id_serde_is_validated() {
        assert!(serde_json::from_str::<SubscriptionId>("\"a b\"").is_err());
        assert!(serde_json::from_str::<SubscriptionId>("12").is_err());
        let id: SubscriptionId = serde_json::from_str("\"sub-1\"").unwrap();
        assert_eq!(id.as_str(), "sub-1");
    }

    #[test]
    fn notification_id_for_longest_subscription_is_valid() {
        let sub = SubscriptionId::new("s".repeat(ID_MAX_CHARS)).unwrap();
        let id = NotificationId::for_event(&sub, u64::MAX);
        assert_eq!(NotificationId::new(id.as_str()), Ok(id));
    }
}
