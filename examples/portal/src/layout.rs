//! The page layout, in `maud` (which escapes every value it is given), and links.
//!
//! Every string that comes from a user or from the data (ids, names, locations, error
//! messages, what was typed) is a maud `(value)` splice, escaped; and it goes through
//! [`PathSegment`] before it lands in a URL path.

use std::fmt;

use dpor::link::percent_encode;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::session::{CSRF_FIELD, Session};

/// Displays `T` percent-encoded as one URL path segment (everything but the RFC 3986
/// unreserved characters is encoded), so that any subscription id makes a safe link.
pub struct PathSegment<T>(pub T);

impl<T: fmt::Display> fmt::Display for PathSegment<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&percent_encode(&self.0.to_string()))
    }
}

/// The hidden field that carries the session's CSRF token; every `POST` form has it.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

/// What the header shows.
pub struct Header<'a> {
    /// The visitor's session (who is signed in, and the sign-out form's token).
    pub session: Option<&'a Session>,
    /// "contoso — global administrator", or `None` when signed out.
    pub who: Option<String>,
    /// The navigation links: (id, label, link).
    pub nav: Vec<(&'static str, &'static str, &'static str)>,
    /// The breadcrumb trail: (label, link) pairs; the last one is the current page.
    pub crumbs: &'a [(String, Option<String>)],
}

/// A whole page: the layout around `body`.
pub fn page(title: &str, header: &Header<'_>, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · dpor demo portal" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header.top {
                    a.brand href="/" { "dpor " span { "demo portal" } }
                    nav.main {
                        @for (id, label, link) in &header.nav {
                            a id=(id) href=(link) { (label) }
                        }
                    }
                    div.session {
                        @match (&header.who, header.session) {
                            (Some(who), Some(session)) => {
                                span.who id="who" { (who) }
                                form method="post" action="/sign-out" {
                                    (csrf_field(session))
                                    button.link id="sign-out" { "Sign out" }
                                }
                            }
                            _ => { a.who id="who" href="/" { "Sign in" } }
                        }
                    }
                }
                main {
                    @if !header.crumbs.is_empty() {
                        nav.crumbs {
                            @for (i, (label, link)) in header.crumbs.iter().enumerate() {
                                @if i > 0 { " " span { "›" } " " }
                                @match link {
                                    Some(link) => { a href=(link) { (label) } }
                                    None => { (label) }
                                }
                            }
                        }
                    }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
    .into_string()
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 "Segoe UI","DejaVu Sans",Arial,sans-serif;color:#1b1b1b;background:#f3f2f1}
header.top{display:flex;align-items:center;gap:24px;background:#0f3d6e;color:#fff;padding:0 24px;height:48px}
header.top a{color:#fff;text-decoration:none}
.brand{font-weight:600;font-size:16px}.brand span{font-weight:400;opacity:.8}
nav.main{display:flex;gap:18px;flex:1}nav.main a{opacity:.9}nav.main a:hover{opacity:1;text-decoration:underline}
.session{display:flex;align-items:center;gap:12px;font-size:13px}.session form{margin:0}
button.link{background:none;border:0;color:#fff;text-decoration:underline;cursor:pointer;font:inherit;padding:0}
main{max-width:980px;margin:0 auto;padding:16px 24px 48px}
.crumbs{font-size:13px;color:#605e5c;margin:4px 0 0}.crumbs a{color:#0f6cbd;text-decoration:none}
h1{font-size:24px;font-weight:600;margin:8px 0 16px}
h2{font-size:18px;font-weight:600;margin:0 0 8px}
a{color:#0f6cbd}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.12)}
th,td{text-align:left;padding:9px 12px;border-bottom:1px solid #edebe9;vertical-align:top}
th{font-weight:600;font-size:13px;color:#605e5c;background:#faf9f8}
.card,.pane{background:#fff;box-shadow:0 1px 3px rgba(0,0,0,.14);padding:20px 24px;margin:0 0 16px;border-radius:2px}
.pane{max-width:560px;border-top:3px solid #0f6cbd}
dl.facts{display:grid;grid-template-columns:180px 1fr;gap:6px 16px;margin:0}
dl.facts dt{color:#605e5c}dl.facts dd{margin:0;font-weight:600}
label{display:block;font-weight:600;margin:12px 0 4px}
input[type=text],select{font:inherit;padding:6px 8px;border:1px solid #8a8886;border-radius:2px;min-width:220px;background:#fff}
input[aria-invalid=true]{border-color:#a4262c}
.row{display:flex;gap:8px;align-items:center;flex-wrap:wrap}
button{font:inherit;padding:6px 16px;border:1px solid #8a8886;background:#fff;border-radius:2px;cursor:pointer}
button.primary{background:#0f6cbd;border-color:#0f6cbd;color:#fff}
button.danger{background:#a4262c;border-color:#a4262c;color:#fff}
.error{color:#a4262c;margin:6px 0 0;font-size:14px}
.notice{background:#fff4ce;border-left:4px solid #c19c00;padding:10px 14px;margin:0 0 16px}
.success{background:#dff6dd;border-left:4px solid #107c10;padding:12px 16px;margin:0 0 16px}
.muted{color:#605e5c;font-size:13px}
.found{margin:16px 0 12px;padding:14px 16px;background:#f3f9fd;border:1px solid #c7e0f4}
.status-active{color:#107c10}.status-suspended{color:#8a6a00}.status-cancelled{color:#a4262c}
details.menu{display:inline-block;position:relative;margin:0 0 16px}
details.menu summary{list-style:none;cursor:pointer;padding:6px 14px;border:1px solid #8a8886;background:#fff;border-radius:2px}
details.menu summary::-webkit-details-marker{display:none}
details.menu summary::after{content:" \25BE"}
details.menu ul{list-style:none;margin:4px 0 0;padding:4px 0;background:#fff;box-shadow:0 2px 8px rgba(0,0,0,.2);min-width:240px;position:absolute;z-index:1}
details.menu li a{display:block;padding:6px 14px;text-decoration:none;color:#1b1b1b}
details.menu li a:hover{background:#f3f2f1}
.nowrap{white-space:nowrap}
td{vertical-align:middle}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}
"#;
