//! Shared by the adversarial tests: small helpers several of them need that
//! `events/support.rs` (which has `shipped`, a shipped catalog loaded) does not give.
#![allow(dead_code)]

/// The text of one of the shipped catalogs (`catalogs/<name>.toml`), to edit before loading.
pub fn shipped_src(name: &str) -> String {
    let path = format!("{}/catalogs/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// One version of the small catalog the grandfathering tests write: one product (`app`:
/// free, basic, pro), one capability (`export`, held from tier `export` up) and one limit
/// (`projects`: Basic's `basic`, Pro's `pro`); offers `BASIC` (1000 + n cents a month) and
/// `PRO` (5000 + n), each with its migration policy and, where given, its trial.
#[derive(Clone, Copy, Debug)]
pub struct AppVersion {
    pub n: u32,
    /// Basic's projects.
    pub basic: i64,
    /// Pro's projects.
    pub pro: i64,
    /// `export` from this tier up.
    pub export: &'static str,
    /// Basic's migration policy.
    pub policy: &'static str,
    /// Pro's migration policy.
    pub pro_policy: &'static str,
    /// Basic's `trial_days` line, if it has one.
    pub basic_trial: Option<u32>,
    /// Pro's `trial_days` line, if it has one.
    pub pro_trial: Option<u32>,
}

impl AppVersion {
    /// Version `n`: Basic's `basic` projects under `policy`, Pro's 100 kept, `export` from
    /// Basic, no trial lines.
    pub fn new(n: u32, basic: i64, policy: &'static str) -> AppVersion {
        AppVersion {
            n,
            basic,
            pro: 100,
            export: "basic",
            policy,
            pro_policy: "keep",
            basic_trial: None,
            pro_trial: None,
        }
    }

    pub fn export(mut self, tier: &'static str) -> AppVersion {
        self.export = tier;
        self
    }

    /// The catalog's text, as catalog `id` named `name`.
    pub fn src(&self, id: &str, name: &str) -> String {
        let trial = |days: Option<u32>| days.map(|d| format!("trial_days = {d}\n")).unwrap_or_default();
        format!(
            r#"
[catalog]
id = "{id}"
name = "{name}"
version = "1"
currency = "usd"
grace_period_days = 3

[[products]]
id = "app"
tiers = ["free", "basic", "pro"]
default_tier = "free"

[[capabilities]]
id = "export"
product = "app"
min_tier = "{export}"

[[limits]]
id = "projects"
product = "app"
values = {{ free = 1, basic = {basic}, pro = {pro} }}

[[offers]]
key = "BASIC"
label = "Basic"
migration = "{policy}"
price = {{ amount = {price}, currency = "usd", interval = "month" }}
stripe_price_ids = ["price_basic"]
grants = [{{ product = "app", tier = "basic" }}]
{basic_trial}
[[offers]]
key = "PRO"
label = "Pro"
migration = "{pro_policy}"
price = {{ amount = {pro_price}, currency = "usd", interval = "month" }}
stripe_price_ids = ["price_pro"]
grants = [{{ product = "app", tier = "pro" }}]
{pro_trial}"#,
            export = self.export,
            basic = self.basic,
            pro = self.pro,
            policy = self.policy,
            pro_policy = self.pro_policy,
            price = 1000 + self.n,
            pro_price = 5000 + self.n,
            basic_trial = trial(self.basic_trial),
            pro_trial = trial(self.pro_trial),
        )
    }

    /// The catalog loaded (as catalog `id` named `name`), as version `n`.
    pub fn catalog(&self, id: &str, name: &str) -> tollgate::Catalog {
        tollgate::Catalog::parse(&self.src(id, name))
            .unwrap_or_else(|e| panic!("version {} is valid: {e}", self.n))
            .with_version(self.n)
    }
}

/// Catalogs by their version number, as a host holds the older ones at hand.
pub fn versions(cats: &[&tollgate::Catalog]) -> std::collections::BTreeMap<u32, tollgate::Catalog> {
    cats.iter()
        .map(|c| (c.version.unwrap(), (*c).clone()))
        .collect()
}

/// A limit of `n`.
#[allow(non_snake_case)]
pub fn L(n: i64) -> tollgate::LimitValue {
    tollgate::LimitValue::Limited(n as u64)
}
