//! Who the browser is: a session cookie signed with HMAC-SHA256 (the `cookie` crate's
//! signed jar), holding who signed in and the session's CSRF token.
//!
//! - The cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` when the portal's public
//!   origin is `https` ([`Sessions::new`]).
//! - A cookie whose signature does not verify, or whose content does not parse, reads
//!   as [`SessionCookie::Invalid`]: the visitor is signed out and told so.
//! - Every visitor has a session, signed in or not, so that the sign-in form carries a
//!   CSRF token too. Signing in and out start a new session with a new token.

use cookie::{Cookie, CookieJar, Key, SameSite};
use dpor::Actor;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "dpor_session";

/// The name of the hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// Who signed in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    /// A customer's user or a partner, acting through `dpor`.
    Actor(Actor),
    /// The portal's operator: reads the outbox, acts on no subscription.
    Operator,
}

/// How long a session lasts: a copied cookie is worth nothing after this.
pub const MAX_AGE: time::Duration = time::Duration::hours(12);

/// What the session cookie holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Who signed in; `None` before sign-in.
    pub who: Option<Who>,
    /// The token every state-changing form of this session carries.
    pub csrf: String,
    /// When the session started (Unix seconds); it ends [`MAX_AGE`] later.
    pub issued: i64,
}

impl Session {
    /// A new session for `who`, with a fresh random CSRF token.
    pub fn new(who: Option<Who>) -> Session {
        Session {
            who,
            csrf: random_token(),
            issued: time::OffsetDateTime::now_utc().unix_timestamp(),
        }
    }

    /// The signed-in actor, if an actor (not the operator) signed in.
    pub fn actor(&self) -> Option<&Actor> {
        match &self.who {
            Some(Who::Actor(actor)) => Some(actor),
            _ => None,
        }
    }

    /// Whether `token` is this session's CSRF token ([`same_secret`]).
    pub fn accepts(&self, token: &str) -> bool {
        same_secret(&self.csrf, token)
    }
}

/// What the request's session cookie says.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionCookie {
    /// No session cookie.
    Missing,
    /// A cookie that is not signed with this portal's key, does not parse, or whose
    /// session is older than [`MAX_AGE`].
    Invalid,
    /// A session this portal signed.
    Valid(Session),
}

impl SessionCookie {
    /// The session, if valid.
    pub fn session(self) -> Option<Session> {
        match self {
            SessionCookie::Valid(session) => Some(session),
            _ => None,
        }
    }
}

/// Whether `given` is the secret `expected`, compared in constant time; an empty secret
/// matches nothing. For CSRF tokens and the operator token.
pub fn same_secret(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// 32 random bytes, hex: a CSRF token, or an operator token made up at start.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs and reads session cookies with one key.
#[derive(Clone)]
pub struct Sessions {
    key: Key,
    secure: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("key", &"<secret>")
            .field("secure", &self.secure)
            .finish()
    }
}

/// A session key that is too short.
#[derive(Debug, thiserror::Error)]
#[error("the session key must be at least 64 bytes, not {length}")]
pub struct KeyTooShort {
    /// How long the key was.
    pub length: usize,
}

impl Sessions {
    /// Sessions signed with `key` (at least 64 bytes: 32 sign, 32 are the `cookie`
    /// crate's encryption half, unused here). `secure` adds the `Secure` attribute:
    /// set it when browsers reach the portal over TLS.
    pub fn new(key: &[u8], secure: bool) -> Result<Sessions, KeyTooShort> {
        let key = Key::try_from(key).map_err(|_| KeyTooShort { length: key.len() })?;
        Ok(Sessions { key, secure })
    }

    /// Sessions signed with a random key: every session ends when the portal restarts.
    pub fn generated(secure: bool) -> Sessions {
        Sessions {
            key: Key::generate(),
            secure,
        }
    }

    /// Reads the session from the request's `Cookie` headers. A cookie that fails its
    /// signature, or several session cookies, read as [`SessionCookie::Invalid`].
    pub fn read(&self, headers: &axum::http::HeaderMap) -> SessionCookie {
        let mut jar = CookieJar::new();
        let mut seen = 0;
        for value in headers.get_all(axum::http::header::COOKIE) {
            let Ok(value) = value.to_str() else {
                return SessionCookie::Invalid;
            };
            for pair in value.split(';') {
                if pair
                    .split_once('=')
                    .is_none_or(|(name, _)| name.trim() != COOKIE)
                {
                    continue;
                }
                seen += 1;
                match Cookie::parse_encoded(pair.trim().to_owned()) {
                    Ok(cookie) => jar.add_original(cookie),
                    Err(_) => return SessionCookie::Invalid,
                }
            }
        }
        match seen {
            0 => return SessionCookie::Missing,
            1 => {}
            _ => return SessionCookie::Invalid,
        }
        let Some(cookie) = jar.signed(&self.key).get(COOKIE) else {
            return SessionCookie::Invalid;
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match serde_json::from_str::<Session>(cookie.value()) {
            Ok(session) if (0..=MAX_AGE.whole_seconds()).contains(&(now - session.issued)) => {
                SessionCookie::Valid(session)
            }
            _ => SessionCookie::Invalid,
        }
    }

    /// The `Set-Cookie` value that stores `session`.
    pub fn set_cookie(&self, session: &Session) -> String {
        // A `Session` is two strings and an `Actor`: it always serializes.
        let json = serde_json::to_string(session).unwrap_or_default();
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key)
            .add(self.attributes(Cookie::new(COOKIE, json)));
        jar.get(COOKIE)
            .map(|cookie| cookie.encoded().to_string())
            .unwrap_or_default()
    }

    /// The `Cookie` request header value that carries `session`, as a browser would
    /// send it back (for tests and for hosts that sign users in elsewhere).
    pub fn cookie_header(&self, session: &Session) -> String {
        let set_cookie = self.set_cookie(session);
        set_cookie.split(';').next().unwrap_or_default().to_owned()
    }

    fn attributes<'c>(&self, cookie: Cookie<'c>) -> Cookie<'c> {
        let mut cookie = cookie;
        cookie.set_path("/");
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_secure(self.secure);
        cookie.set_max_age(cookie::time::Duration::seconds(MAX_AGE.whole_seconds()));
        cookie
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, header};

    fn request_with(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        headers
    }

    #[test]
    fn a_signed_session_reads_back_and_a_forged_one_does_not() {
        let sessions = Sessions::new(&[7; 64], false).unwrap();
        let session = Session::new(Some(Who::Actor(Actor::global_admin(
            dpor::CustomerId::new("contoso").unwrap(),
        ))));
        let cookie = sessions.cookie_header(&session);
        assert_eq!(
            sessions.read(&request_with(&cookie)),
            SessionCookie::Valid(session.clone())
        );
        // Another key's signature, an edited value, or two cookies: signed out.
        let other = Sessions::new(&[8; 64], false).unwrap();
        assert_eq!(other.read(&request_with(&cookie)), SessionCookie::Invalid);
        let edited = cookie.replace("contoso", "fabrikam");
        assert_eq!(
            sessions.read(&request_with(&edited)),
            SessionCookie::Invalid
        );
        let twice = format!("{cookie}; {cookie}");
        assert_eq!(sessions.read(&request_with(&twice)), SessionCookie::Invalid);
        assert_eq!(
            sessions.read(&request_with("other=1")),
            SessionCookie::Missing
        );
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_behind_tls() {
        let plain = Sessions::new(&[7; 64], false).unwrap();
        let tls = Sessions::new(&[7; 64], true).unwrap();
        let session = Session::new(None);
        let cookie = plain.set_cookie(&session);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(!cookie.contains("Secure"));
        assert!(tls.set_cookie(&session).contains("Secure"));
    }

    #[test]
    fn a_session_ends_after_its_max_age() {
        let sessions = Sessions::new(&[7; 64], false).unwrap();
        let mut old = Session::new(None);
        old.issued -= MAX_AGE.whole_seconds() + 1;
        let cookie = sessions.cookie_header(&old);
        assert_eq!(
            sessions.read(&request_with(&cookie)),
            SessionCookie::Invalid
        );
        assert!(
            sessions
                .set_cookie(&Session::new(None))
                .contains("Max-Age=43200")
        );
    }

    #[test]
    fn a_short_key_is_refused_and_tokens_differ() {
        assert_eq!(Sessions::new(&[1; 63], false).unwrap_err().length, 63);
        let (a, b) = (Session::new(None), Session::new(None));
        assert_ne!(a.csrf, b.csrf);
        assert!(a.accepts(&a.csrf.clone()));
        assert!(!a.accepts(&b.csrf) && !a.accepts(""));
    }
}
