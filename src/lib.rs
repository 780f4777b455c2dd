//! tollgate: an entitlement engine for SaaS apps.
//!
//! One pure core (no I/O, no clock: `now` is always an argument) that the npm
//! package, the Cloudflare Worker and the browser app all run. See
//! ARCHITECTURE.md for the map.

/// A stable code enum (error codes, decision reasons): each code written once, as the string every host sees
/// (`as_str`, serde, and through ts-rs the TypeScript union of the npm package).
macro_rules! codes {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal,)* }) => {
        $(#[$meta])*
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $code)] $variant,)*
        }
        impl $name {
            /// Every code.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)*
                }
            }
        }
    };
}

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
