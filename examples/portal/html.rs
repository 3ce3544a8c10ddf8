//! HTML building blocks: escaping, URL path segments and the page layout.
//!
//! Every string that comes from a user or from the data (ids, names, locations, error
//! messages, what was typed) goes through [`Esc`] before it lands in the HTML, and
//! through [`PathSegment`] before it lands in a URL path.

use std::fmt::{self, Write as _};

use dpor::link::percent_encode;

/// Displays `T` with the HTML special characters escaped: safe in element content and
/// in quoted attribute values.
pub struct Esc<T>(pub T);

impl<T: fmt::Display> fmt::Display for Esc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Escaper(f), "{}", self.0)
    }
}

struct Escaper<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for Escaper<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            self.0.write_str(&rest[..at])?;
            self.0.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        self.0.write_str(rest)
    }
}

/// Displays `T` percent-encoded as one URL path segment (everything but the RFC 3986
/// unreserved characters is encoded), so that any subscription id makes a safe link.
pub struct PathSegment<T>(pub T);

impl<T: fmt::Display> fmt::Display for PathSegment<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&percent_encode(&self.0.to_string()))
    }
}

/// What the header shows about who is signed in.
pub struct Header<'a> {
    /// "contoso — global administrator", or `None` when signed out.
    pub who: Option<String>,
    /// Whether to show the customer's navigation (Billing > Subscriptions).
    pub customer_nav: bool,
    /// The breadcrumb trail: (label, link) pairs; the last one is the current page.
    pub crumbs: &'a [(String, Option<String>)],
}

/// A whole page: the layout around `body` (which must already be escaped HTML).
pub fn page(title: &str, header: &Header<'_>, body: &str) -> String {
    let mut nav = String::new();
    if header.customer_nav {
        nav.push_str(
            r#"<a id="nav-subscriptions" href="/subscriptions">Billing &rsaquo; Subscriptions</a>"#,
        );
    } else if header.who.is_some() {
        nav.push_str(r#"<a id="nav-subscriptions" href="/subscriptions">My customers</a>"#);
    }
    nav.push_str(r#"<a id="nav-outbox" href="/outbox">Outbox</a>"#);
    let who = match &header.who {
        Some(who) => format!(
            r#"<span class="who" id="who">{}</span><form method="post" action="/sign-out"><button class="link" id="sign-out">Sign out</button></form>"#,
            Esc(who)
        ),
        None => r#"<a class="who" id="who" href="/">Sign in</a>"#.to_owned(),
    };
    let mut crumbs = String::new();
    if !header.crumbs.is_empty() {
        crumbs.push_str(r#"<nav class="crumbs">"#);
        for (i, (label, link)) in header.crumbs.iter().enumerate() {
            if i > 0 {
                crumbs.push_str(" <span>&rsaquo;</span> ");
            }
            match link {
                Some(link) => {
                    let _ = write!(crumbs, r#"<a href="{}">{}</a>"#, Esc(link), Esc(label));
                }
                None => {
                    let _ = write!(crumbs, "{}", Esc(label));
                }
            }
        }
        crumbs.push_str("</nav>");
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · dpor demo portal</title>
<style>{STYLE}</style>
</head>
<body>
<header class="top"><a class="brand" href="/">dpor <span>demo portal</span></a><nav class="main">{nav}</nav><div class="session">{who}</div></header>
<main>
{crumbs}
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#,
        title = Esc(title),
    )
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 "PathSegmentoe UI","DejaVu Sans",Arial,sans-serif;color:#1b1b1b;background:#f3f2f1}
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
