//! The stateful evaluator for hot paths: load a catalog and entitlements once,
//! then answer checks by product and tier *index* with a per-product cache
//! that stays valid until the next instant the answer can change.

use std::cell::Cell;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::decide::{self, DecideError, Decision};
use crate::model::Entitlements;
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug)]
struct Cached {
    /// Effective tier + 1 (0: none).
    tier: u32,
    /// The cached answer is valid for `lo <= now < hi`.
    lo: i64,
    hi: i64,
}

const EMPTY: Cached = Cached { tier: 0, lo: i64::MAX, hi: i64::MIN };

pub struct Engine {
    catalog: Arc<Catalog>,
    ents: Entitlements,
    cache: Vec<Cell<Cached>>,
}

impl Engine {
    pub fn new(catalog: Catalog, ents: Entitlements) -> Engine {
        Engine::shared(Arc::new(catalog), ents)
    }

    /// An engine over a catalog shared with other engines (one per subject),
    /// without copying it.
    pub fn shared(catalog: Arc<Catalog>, ents: Entitlements) -> Engine {
        let n = catalog.products().len();
        Engine { catalog, ents, cache: (0..n).map(|_| Cell::new(EMPTY)).collect() }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
    pub fn entitlements(&self) -> &Entitlements {
        &self.ents
    }

    /// Replaces the entitlements (a new snapshot arrived) and drops the cache.
    pub fn set_entitlements(&mut self, ents: Entitlements) {
        self.ents = ents;
        for c in &self.cache {
            c.set(EMPTY);
        }
    }

    pub fn product_index(&self, product: &str) -> Result<usize, DecideError> {
        self.catalog.product_index(product).ok_or_else(|| DecideError::UnknownProduct(product.into()))
    }
    pub fn tier_index(&self, product: &str, tier: &str) -> Result<usize, DecideError> {
        self.catalog
            .tier_index(product, tier)
            .ok_or_else(|| DecideError::UnknownTier { product: product.into(), tier: tier.into() })
    }

    /// The effective tier index of a product (None: none), cached.
    pub fn effective_tier(&self, product_ix: usize, now: Timestamp) -> Option<usize> {
        let slot = &self.cache[product_ix];
        let c = slot.get();
        if c.lo <= now.0 && now.0 < c.hi {
            return c.tier.checked_sub(1).map(|t| t as usize);
        }
        let p = &self.catalog.products()[product_ix];
        let eff = decide::effective(&self.catalog, &self.ents, &p.id, now).expect("index is valid");
        slot.set(Cached {
            tier: eff.tier.map_or(0, |t| t as u32 + 1),
            lo: eff.since.map_or(i64::MIN, |s| s.0),
            hi: eff.until.map_or(i64::MAX, |u| u.0),
        });
        eff.tier
    }

    /// The hot path: a boolean by indices. Out-of-range indices answer false.
    pub fn check(&self, product_ix: usize, tier_ix: usize, now: Timestamp) -> bool {
        if product_ix >= self.cache.len() {
            return false;
        }
        self.effective_tier(product_ix, now).is_some_and(|t| t >= tier_ix)
    }

    pub fn has_access(&self, product: &str, tier: &str, now: Timestamp) -> Result<Decision, DecideError> {
        decide::has_access(&self.catalog, &self.ents, product, tier, now)
    }
}
