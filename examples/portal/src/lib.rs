//! The reference portal for [`dpor`]: the customer's "partner of record" pages of
//! KB3185444 as server-rendered HTML, and a JSON API over the same `PorService`,
//! described by an OpenAPI 3.1 document at `/api/openapi.json`.
//!
//! Run it with `cargo run -p dpor-portal` (see `main.rs` for the environment it reads).
//! To run it over your own store, build a `PorService` over it and hand it to
//! [`build_app`] with a [`Config`]: the router is generic over the repository, the
//! directory and the clock.
//!
//! | module | holds |
//! |---|---|
//! | [`app`] | settings, state, the router, how a `dpor::Error` maps to HTTP |
//! | [`session`] | the signed session cookie and its CSRF token |
//! | [`guard`] | the refusal of cross-site requests and of forms without the token |
//! | [`pages`] | the HTML pages (maud) |
//! | [`layout`] | the page layout and links |
//! | [`api`] | the JSON API and its OpenAPI document |
//! | [`seed`] | the demo data |

pub mod api;
pub mod app;
pub mod guard;
pub mod layout;
pub mod pages;
pub mod seed;
pub mod session;

pub use app::{Config, build_app};
