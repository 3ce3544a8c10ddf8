//! The partner's quick link: [`PartnerLink`], a URL query that pre-fills "Check ID",
//! and the one percent codec of the crate ([`percent_encode`], [`percent_decode`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::id::{IdError, MpnId, MpnIdError, SubscriptionId};

/// A partner's quick link: a URL query that pre-fills "Check ID" for the customer.
///
/// The partner sends it; the customer's global administrator opens it, which is
/// [`PorService::check_partner`](crate::PorService::check_partner) with its fields,
/// and submits as usual. Parsing is strict: exactly the keys `subscription` and
/// `mpn_id`, once each, percent-encoded UTF-8, each value valid.
///
/// ```
/// use dpor::*;
/// use dpor::link::PartnerLink;
///
/// let link = PartnerLink { subscription: SubscriptionId::new("sub#1")?, mpn_id: MpnId::parse("565380")? };
/// let query = link.to_query_string();
/// assert_eq!(query, "subscription=sub%231&mpn_id=565380");
/// assert_eq!(PartnerLink::parse(&query)?, link);
/// assert!(PartnerLink::parse("subscription=sub-1").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartnerLink {
    /// The subscription to designate the partner on.
    pub subscription: SubscriptionId,
    /// The partner's MPN ID.
    pub mpn_id: MpnId,
}

/// The wire form of [`PartnerLink`], a request: unknown fields and arrays are refused.
#[derive(Serialize, Deserialize)]
#[serde(remote = "PartnerLink", deny_unknown_fields)]
struct PartnerLinkFields {
    subscription: SubscriptionId,
    mpn_id: MpnId,
}

crate::wire::object_only!(PartnerLink via PartnerLinkFields, "a partner link (a JSON object)");

/// Why a query string is not a [`PartnerLink`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartnerLinkError {
    /// A `key=value` pair is malformed (no `=`, or an empty pair).
    #[error("the link is malformed near {0:?}")]
    Malformed(String),
    /// A key other than `subscription` and `mpn_id`.
    #[error("the link has an unknown field {0:?}")]
    UnknownField(String),
    /// A field given twice.
    #[error("the link gives {0} twice")]
    DuplicateField(&'static str),
    /// A required field is missing.
    #[error("the link has no {0}")]
    MissingField(&'static str),
    /// Bad percent-encoding, a character that must be encoded, or not UTF-8.
    #[error("the link is not correctly encoded near {0:?}")]
    Encoding(String),
    /// The subscription id is invalid; the [`IdError`] says why (its `source`).
    #[error("the link's subscription id is invalid")]
    Subscription(#[source] IdError),
    /// The MPN ID is invalid; the [`MpnIdError`] says why (its `source`).
    #[error("the link's partner ID is invalid")]
    MpnId(#[source] MpnIdError),
}

impl PartnerLink {
    /// The link as a query string (without `?`): `subscription=...&mpn_id=...`, every
    /// byte outside `A-Z a-z 0-9 - . _ ~` percent-encoded.
    pub fn to_query_string(&self) -> String {
        format!(
            "subscription={}&mpn_id={}",
            percent_encode(self.subscription.as_str()),
            self.mpn_id
        )
    }

    /// Parses a query string (a leading `?` is allowed).
    ///
    /// # Errors
    ///
    /// [`PartnerLinkError`] says what is wrong; nothing is guessed or skipped.
    pub fn parse(query: &str) -> Result<PartnerLink, PartnerLinkError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let (mut subscription, mut mpn_id) = (None, None);
        for pair in query.split('&') {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(PartnerLinkError::Malformed(pair.to_owned()));
            };
            let (slot, name) = match decode(key)?.as_str() {
                "subscription" => (&mut subscription, "subscription"),
                "mpn_id" => (&mut mpn_id, "mpn_id"),
                other => return Err(PartnerLinkError::UnknownField(other.to_owned())),
            };
            if slot.replace(decode(value)?).is_some() {
                return Err(PartnerLinkError::DuplicateField(name));
            }
        }
        let subscription = subscription.ok_or(PartnerLinkError::MissingField("subscription"))?;
        let mpn_id = mpn_id.ok_or(PartnerLinkError::MissingField("mpn_id"))?;
        Ok(PartnerLink {
            subscription: SubscriptionId::new(subscription)
                .map_err(PartnerLinkError::Subscription)?,
            mpn_id: MpnId::parse(&mpn_id).map_err(PartnerLinkError::MpnId)?,
        })
    }
}

impl fmt::Display for PartnerLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_query_string())
    }
}

impl FromStr for PartnerLink {
    type Err = PartnerLinkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PartnerLink::parse(s)
    }
}

/// Whether `byte` is one of RFC 3986's unreserved characters, `A-Z a-z 0-9 - . _ ~`:
/// the only bytes [`percent_encode`] leaves as they are.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every byte of `value` outside RFC 3986's unreserved characters, so
/// that the result is safe in a query value, a path segment or a cookie value.
///
/// ```
/// use dpor::link::{percent_decode, percent_encode};
///
/// assert_eq!(percent_encode("sub#1 é"), "sub%231%20%C3%A9");
/// assert_eq!(percent_decode("sub%231%20%C3%A9").as_deref(), Some("sub#1 é"));
/// ```
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
    out
}

/// Strictly reverses [`percent_encode`]: `None` for a malformed escape, a byte that
/// should have been encoded (`+` and space included), or a result that is not UTF-8.
pub fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let &[high, low] = bytes.get(i + 1..i + 3)? else {
                return None;
            };
            let digit = |d: u8| char::from(d).to_digit(16);
            let (high, low) = (digit(high)?, digit(low)?);
            out.push(u8::try_from(high * 16 + low).ok()?);
            i += 3;
        } else if is_unreserved(byte) {
            out.push(byte);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// [`percent_decode`] for a link's key or value.
fn decode(value: &str) -> Result<String, PartnerLinkError> {
    percent_decode(value).ok_or_else(|| PartnerLinkError::Encoding(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_parsing_is_strict() {
        for bad in [
            "",
            "subscription=s",
            "mpn_id=565380",
            "subscription=s&mpn_id=565380&x=1",
            "subscription=s&subscription=t&mpn_id=565380",
            "subscription=s&mpn_id=5653",
            "subscription=a b&mpn_id=565380",
            "subscription=a%2&mpn_id=565380",
            "subscription=a%ZZ&mpn_id=565380",
            "subscription=a%+F&mpn_id=565380",
            "subscription=%FF&mpn_id=565380",
            "subscription=a+b&mpn_id=565380",
            "subscription=%20&mpn_id=565380",
            "subscription&mpn_id=565380",
            "subscription=s&&mpn_id=565380",
        ] {
            assert!(PartnerLink::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_round_trips_any_valid_id() {
        for id in ["sub-1", "a&b=c", "100%", "é/ü?#", "x+y"] {
            let link = PartnerLink {
                subscription: SubscriptionId::new(id).unwrap(),
                mpn_id: MpnId::parse("0012345").unwrap(),
            };
            assert_eq!(
                PartnerLink::parse(&link.to_query_string()),
                Ok(link.clone())
            );
            assert_eq!(format!("?{link}").parse::<PartnerLink>(), Ok(link));
        }
    }
}
