//! Time on the wire: timestamps as RFC 3339 strings, always written in UTC, and
//! durations as whole seconds.
//!
//! Used as `#[serde(with = "crate::timestamp")]` on every `OffsetDateTime` field of a
//! record. Any RFC 3339 offset is accepted on the way in and normalized to UTC, so a
//! record read back compares equal (an `OffsetDateTime` compares by instant).
//!
//! RFC 3339 writes years 0000 to 9999 only, so the instants a record can hold are those
//! whose UTC date lies in those years ([`utc`]). A time whose offset moves it out of
//! that range (`9999-12-31T23:59:59-00:01` is in the year 10000 in UTC) is a
//! deserialization error, never a panic, and whatever is accepted writes back.

use serde::{Deserialize, Deserializer, Serializer};
use time::OffsetDateTime;
use time::UtcOffset;
use time::format_description::well_known::Rfc3339;

/// `at` in UTC, if its UTC date lies in the years 0000 to 9999 that a record can hold.
pub(crate) fn utc(at: OffsetDateTime) -> Option<OffsetDateTime> {
    at.checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (0..=9999).contains(&utc.year()))
}

/// Why `at` cannot be recorded.
fn out_of_range(at: &dyn std::fmt::Display) -> String {
    format!("{at} is out of range: a recorded time lies in the years 0000 to 9999 in UTC")
}

pub(crate) fn serialize<S: Serializer>(
    at: &OffsetDateTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let text = utc(*at)
        .ok_or_else(|| serde::ser::Error::custom(out_of_range(at)))?
        .format(&Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(&text)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<OffsetDateTime, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    let at = OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)?;
    utc(at).ok_or_else(|| serde::de::Error::custom(out_of_range(&text)))
}

/// `Option<OffsetDateTime>` as an RFC 3339 string or `null`.
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        at: &Option<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        #[derive(Deserialize)]
        struct Utc(#[serde(with = "super")] OffsetDateTime);
        Ok(Option::<Utc>::deserialize(deserializer)?.map(|Utc(at)| at))
    }
}

/// A `time::Duration` as a whole number of seconds (sub-second parts are dropped).
pub(crate) mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(d.whole_seconds())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        Ok(Duration::seconds(i64::deserialize(deserializer)?))
    }
}
