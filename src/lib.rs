//! tollgate: an entitlement engine for SaaS apps.
//!
//! One pure core (no I/O, no clock: `now` is always an argument) that the npm
//! package, the Cloudflare Worker and the browser app all run. See
//! ARCHITECTURE.md for the map.

pub mod alerts;
pub mod billing;
pub mod catalog;
pub mod catalog_diff;
pub mod charge;
pub mod checkout;
pub mod credits;
pub mod decide;
pub mod engine;
pub mod grandfather;
pub mod meter;
pub mod model;
pub mod notices;
pub mod orgs;
pub mod money;
pub mod seats;
pub mod vcm;
pub mod snapshot;
pub mod time;
pub mod usage;
pub mod verify;
pub mod webhooks;
mod validate;

#[cfg(all(target_arch = "wasm32", feature = "js"))]
mod wasm;

pub use catalog::{Catalog, CatalogError, LimitValue};
pub use decide::{DecideError, Decision, ExportPolicy, Reason, ToolState, Upgrade};
pub use engine::Engine;
pub use model::{Entitlements, Grant, Source, Status};
pub use money::Money;
pub use time::Timestamp;
