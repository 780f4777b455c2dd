//! tollgate's Cloudflare Worker (workers-rs): provider webhooks in, grants stored in
//! Supabase, signed entitlement snapshots out, usage charged server-side.
//!
//! Layout: everything but `entry` is plain Rust over [`http::Transport`], built and
//! tested natively (reqwest) as well as for wasm32 (the runtime's `fetch`):
//! - [`config`]: env and secrets; [`auth`]: Supabase access tokens and the admin secret;
//! - [`supabase`]: the one PostgREST client; [`state`]: a subject's stored state;
//! - [`app`]: routing and JSON errors; [`routes`]: the route table and the body limit;
//!   [`webhook`], [`consume`], [`admin`], [`outbox`]: the routes; [`outbox`] also sends the
//!   outbound webhooks;
//! - `entry` (wasm32 only): the `#[event(fetch)]` and `#[event(scheduled)]` glue.
//!
//! Every rule (what an event means, who may do what, what a charge takes) is the core's.

pub mod admin;
pub mod app;
pub mod attribution;
pub mod auth;
pub mod budget;
pub mod config;
pub mod consume;
pub mod ctx;
pub mod http;
pub mod kept;
#[cfg(not(target_arch = "wasm32"))]
pub mod memory;
pub mod meter;
pub mod orgs;
pub mod outbox;
pub mod pay;
pub mod random;
pub mod respond;
pub mod routes;
pub mod state;
pub mod store;
pub mod supabase;
pub mod webhook;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

#[cfg(target_arch = "wasm32")]
mod entry;

include!(concat!(env!("OUT_DIR"), "/catalogs.rs"));

pub use app::App;
pub use config::Config;
