//! The door every state-changing request goes through, before any handler runs.
//!
//! 0. **Without a public origin, only loopback names.** With no `PORTAL_ORIGIN` the
//!    portal is reached directly, on a loopback address: a request whose `Host` names
//!    anything else is refused with 403, reads included. A page of another site whose
//!    name was pointed at 127.0.0.1 (DNS rebinding) is, to the browser, its own origin:
//!    without this rule its script could read and change the local portal.
//! 1. **Cross-site requests are refused.** A request whose `Origin` is not the portal's
//!    own origin, or whose `Sec-Fetch-Site` is neither `same-origin` nor `none`, gets
//!    403 and changes nothing. Requests without these headers (clients that are not
//!    browsers) go on to the next check.
//! 2. **Forms carry the session's CSRF token.** A `POST` to a page (anything outside
//!    `/api`) must carry the `csrf` field of the visitor's signed session
//!    ([`Session::accepts`]); without a session, or with another token, it is 403.
//!
//! Every answer, refusals included, says that it may not be framed by another page
//! (`X-Frame-Options: DENY`, `Content-Security-Policy: frame-ancestors 'none'`: a
//! one-button "Remove" is what clickjacking aims at) nor kept by a cache
//! (`Cache-Control: no-store`: the pages show a customer's partners), and that its
//! type is the one it says (`X-Content-Type-Options: nosniff`).
//!
//! The JSON API takes its actor from the `X-Actor` header, which a browser never sends
//! across sites without a CORS preflight that this portal does not answer; rule 1 still
//! applies to it.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::pages;
use crate::session::{CSRF_FIELD, Session, Sessions};

/// The largest form body the portal reads (its forms are a few hundred bytes).
pub const FORM_LIMIT: usize = 64 * 1024;

/// What the guard needs: the session keys and the portal's public origin.
#[derive(Clone, Debug)]
pub struct Guard {
    /// Reads the session of a form's sender.
    pub sessions: Sessions,
    /// `scheme://host[:port]` as browsers see the portal, or `None` to take it from the
    /// request's `Host` header (a portal reached directly, not behind a proxy).
    pub origin: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The `Host` is not a loopback name, and the portal has no public origin.
    ForeignHost,
    /// `Origin` or `Sec-Fetch-Site` says another site sent it.
    CrossSite,
    /// A form without this session's CSRF token.
    BadToken,
}

impl Refusal {
    /// The message shown (page) or answered (API).
    pub fn message(self) -> &'static str {
        match self {
            Refusal::ForeignHost => {
                "this portal answers only at localhost; set PORTAL_ORIGIN to serve it under another name"
            }
            Refusal::CrossSite => {
                "this request came from another site, so it was refused and nothing changed"
            }
            Refusal::BadToken => {
                "this form has expired or did not come from this portal; nothing changed. Reload the page and try again"
            }
        }
    }
}

impl Guard {
    /// Rule 0: whether the request names a host the portal does not answer at: with no
    /// public origin, anything but `localhost`, an IPv4 loopback address or `[::1]` (with
    /// any port). A request without `Host` (not a browser's) passes.
    pub fn foreign_host(&self, headers: &HeaderMap) -> bool {
        if self.origin.is_some() {
            return false;
        }
        let Some(host) = headers.get(header::HOST) else {
            return false;
        };
        let Ok(host) = host.to_str() else {
            return true;
        };
        let name = match host.rsplit_once(':') {
            Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                name
            }
            _ => host,
        };
        let loopback = name.eq_ignore_ascii_case("localhost")
            || name == "[::1]"
            || name
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
        !loopback
    }

    /// Rule 1: whether the request's own headers say another site sent it.
    pub fn cross_site(&self, headers: &HeaderMap) -> bool {
        if let Some(site) = headers.get("sec-fetch-site")
            && !matches!(site.as_bytes(), b"same-origin" | b"none")
        {
            return true;
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return false;
        };
        let Ok(origin) = origin.to_str() else {
            return true;
        };
        match &self.origin {
            Some(own) => !origin.eq_ignore_ascii_case(own),
            None => {
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
                let origin_host = origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"));
                match (host, origin_host) {
                    (Some(host), Some(origin_host)) => !origin_host.eq_ignore_ascii_case(host),
                    _ => true,
                }
            }
        }
    }
}

/// Whether the method changes state (everything but `GET`, `HEAD`, `OPTIONS`).
fn unsafe_method(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether `path` is the JSON API's (it answers JSON, and takes no forms).
pub fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The middleware: applies the rules, then hands the request on; every answer gets the
/// headers the module's docs name.
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    harden(admit(guard, request, next).await)
}

/// The headers every answer carries (see the module's docs).
fn harden(mut response: Response) -> Response {
    use axum::http::HeaderValue;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The rules, in order; the answer of the first that refuses, or of the handler.
async fn admit(guard: Guard, request: Request, next: Next) -> Response {
    let api = is_api(request.uri().path());
    if guard.foreign_host(request.headers()) {
        return refuse(api, Refusal::ForeignHost, None);
    }
    if !unsafe_method(request.method()) {
        return next.run(request).await;
    }
    let session = guard.sessions.read(request.headers()).session();
    if guard.cross_site(request.headers()) {
        return refuse(api, Refusal::CrossSite, session.as_ref());
    }
    if api {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
        return pages::error_response(
            session.as_ref(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "the form is too large",
        );
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    match (&session, token) {
        (Some(session), Some(token)) if session.accepts(&token) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ => refuse(false, Refusal::BadToken, session.as_ref()),
    }
}

fn refuse(api: bool, why: Refusal, session: Option<&Session>) -> Response {
    if api {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", why.message()).into_response()
    } else {
        pages::error_response(session, StatusCode::FORBIDDEN, why.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn without_a_public_origin_only_loopback_names_pass() {
        let direct = Guard {
            sessions: Sessions::generated(false),
            origin: None,
        };
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "127.1.2.3",
        ] {
            assert!(!direct.foreign_host(&headers(&[("host", host)])), "{host}");
        }
        assert!(
            !direct.foreign_host(&headers(&[])),
            "no Host: not a browser"
        );
        for host in [
            "evil.example:8080",
            "evil.example",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "[::2]:8080",
            "127.0.0.1:80:80",
        ] {
            assert!(direct.foreign_host(&headers(&[("host", host)])), "{host}");
        }
        let proxied = Guard {
            sessions: Sessions::generated(false),
            origin: Some("https://portal.example".to_owned()),
        };
        assert!(!proxied.foreign_host(&headers(&[("host", "portal.example")])));
    }

    #[test]
    fn only_the_portals_own_origin_passes() {
        let direct = Guard {
            sessions: Sessions::generated(false),
            origin: None,
        };
        let proxied = Guard {
            origin: Some("https://portal.example".to_owned()),
            ..direct.clone()
        };
        let own = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(!direct.cross_site(&own));
        assert!(proxied.cross_site(&own));
        assert!(!proxied.cross_site(&headers(&[("origin", "https://portal.example")])));
        for other in [
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ]),
            headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]),
            headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]),
            headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-site")]),
        ] {
            assert!(direct.cross_site(&other), "{other:?}");
        }
        // No browser headers at all: not cross-site by these rules (the token decides).
        assert!(!direct.cross_site(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!direct.cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
    }
}
