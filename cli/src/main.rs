//! `tollgate`: the command-line tool for people debugging billing and for
//! scripts. It reads files, the clock and the terminal; everything it decides
//! comes from the pure core (`tollgate` crate).
//!
//! Exit codes: 0 for success (or an accepted signature), 1 when the input was
//! checked and refused (a broken catalog, an unparsable event, a rejected
//! signature, an unreadable file), 2 for a malformed command line.

mod catalog_cmd;
mod diff_cmd;
mod init_cmd;
mod quote_cmd;
mod replay_cmd;
mod schema_cmd;
mod sign_cmd;
mod store_cmd;
mod types_cmd;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tollgate::Timestamp;

use crate::util::{parse_now, parse_seconds, Failure};

/// Entitlement engine tools: check catalogs, price usage, replay billing
/// events into entitlement state, and verify webhook signatures.
#[derive(Parser, Debug)]
#[command(name = "tollgate", version, propagate_version = true)]
#[command(
    after_help = "Times (--now) are RFC 3339 (2026-03-01T00:00:00Z) or Unix seconds; the default is the system clock.\n\
Exit codes: 0 success or accepted signature, 1 refused input or failure, 2 bad command line."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a commented starter catalog to FILE (default catalog.toml), valid as it is.
    Init {
        /// Where to write it (a directory: catalog.toml inside it).
        #[arg(default_value = "catalog.toml")]
        file: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Catalog tools.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Price a usage request: seconds x model tier x quality tier.
    Quote(QuoteArgs),
    /// Fold files of Stripe and Razorpay events into the billing state and print it as JSON.
    Replay(ReplayArgs),
    /// Verify a webhook signature (exit 0 and print "valid" when accepted).
    #[command(subcommand)]
    Verify(VerifyCommand),
    /// Sign a payload as the provider would (for scripts, demos and tests).
    #[command(subcommand)]
    Sign(SignCommand),
    /// Stripe tools.
    #[command(subcommand)]
    Stripe(StripeCommand),
}

#[derive(Subcommand, Debug)]
enum StripeCommand {
    /// Print a Stripe CLI fixtures file that creates a product and a price for each offer
    /// sold through Stripe, the price's lookup_key being the offer key.
    #[command(after_help = "Run it with the Stripe CLI: tollgate stripe fixtures catalog.toml > stripe-fixtures.json && stripe fixtures stripe-fixtures.json\n\
Then list each price id under its offer's stripe_price_ids, or leave them out: a price whose lookup_key is an offer key names that offer.")]
    Fixtures {
        /// The catalog (TOML or JSON).
        catalog: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum CatalogCommand {
    /// Validate a catalog (TOML or JSON) and print a summary of it.
    #[command(
        after_help = "The format follows the file extension (.toml or .json), or the first character otherwise.\n\
On an error the message names the field path and, for TOML, the line; the exit code is 1."
    )]
    Check {
        /// Catalog file (`-` reads standard input).
        file: PathBuf,
        /// Print the validated catalog as JSON instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Validate a catalog with the core and store it as a new version (active at once unless
    /// --no-activate). Pushing content the store already has changes nothing.
    #[command(after_help = "The store is Supabase's REST API (--url, or TOLLGATE_SUPABASE_URL) written with the service role\n\
(--service-key, or TOLLGATE_SERVICE_KEY). An invalid file is refused with the core's error and line, before any call.\n\
Workers serving this catalog id pick the new version up within a minute, and checkouts at once.")]
    Push {
        /// Catalog file (TOML or JSON; `-` reads standard input).
        file: PathBuf,
        #[command(flatten)]
        store: store_cmd::StoreArgs,
        /// Who publishes (recorded with the version); default $USER.
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// Store the version without making it the active one.
        #[arg(long)]
        no_activate: bool,
        /// Print the store's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What changed between two catalogs (offers, prices, tiers, capabilities, limits, pools,
    /// tools) and, with --facts, whose access, limits or balances change.
    #[command(after_help = "--facts takes stored facts (JSON lines, one fact per line, as `replay` reads them; provider\n\
events work too): every subject is replayed under both catalogs by the core, and each one whose access to a\n\
capability, limit value or credit balance differs is printed with the change. --url reads them from the store\n\
instead (every row of `billing_facts`, with the service key). Existing grants are taken as sold under OLD, so\n\
NEW's migration policies count: `keep` (the default) changes nothing for them, `now` at once, `at_renewal` is\n\
listed as what changes at the subject's renewal. Exit 0 whatever changed.")]
    Diff {
        /// The catalog before (TOML or JSON).
        old: PathBuf,
        /// The catalog after.
        new: PathBuf,
        /// Stored facts to replay under both catalogs.
        #[arg(long, value_name = "FILE", conflicts_with = "url")]
        facts: Option<PathBuf>,
        /// Read the stored facts from this Supabase project instead (`billing_facts`, with
        /// the service key).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// A secret API key or the legacy service-role key, with --url.
        #[arg(long, value_name = "KEY", env = "TOLLGATE_SERVICE_KEY", hide_env_values = true)]
        service_key: Option<String>,
        /// The time the subjects are compared at.
        #[arg(long, value_name = "T", value_parser = parse_now)]
        now: Option<Timestamp>,
        /// Print as JSON ({"changes": [...], "subjects": [...] or null}).
        #[arg(long)]
        json: bool,
    },
    /// Print TypeScript literal unions of the catalog's ids (products, tiers, capabilities,
    /// limits, pools, offers, tools): `tollgate catalog types catalog.toml > tollgate-catalog.d.ts`.
    #[command(after_help = "The file also registers the catalog with the packages (`declare module 'tollgate' { interface Register { ids: Ids } }`),\n\
so `engine.can(\"exprot\")` and `useAccess({ capability: \"exprot\" })` fail to compile. An app with several catalogs\n\
passes --no-register and gives each call its catalog's `Ids` as a type parameter.")]
    Types {
        /// Catalog file (TOML or JSON).
        file: PathBuf,
        /// Do not register the catalog with the packages (only export the types).
        #[arg(long)]
        no_register: bool,
    },
    /// Print the JSON Schema of catalog files, for editors (`#:schema ./catalog.schema.json`
    /// as a TOML catalog's first line).
    Schema,
    /// List the versions in the store (`*` marks the active one of each catalog).
    List {
        #[command(flatten)]
        store: store_cmd::StoreArgs,
        /// Only this catalog id.
        #[arg(long, value_name = "ID")]
        catalog: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a stored version the active one (an older one: a rollback).
    Activate {
        /// The version number (`tollgate catalog list` shows them).
        #[arg(id = "catalog_version", value_name = "VERSION")]
        version: u32,
        #[command(flatten)]
        store: store_cmd::StoreArgs,
        /// The catalog id; may be left out when the store holds one catalog only.
        #[arg(long, value_name = "ID")]
        catalog: Option<String>,
        /// Who activates (recorded in the activation history); default $USER.
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

#[derive(Args, Debug)]
#[command(
    after_help = "Rounding: seconds x base_price_per_second x multiplier is computed exactly (decimal strings, no\n\
floating point), converted to minor units and rounded up once, on the total."
)]
pub struct QuoteArgs {
    /// Catalog file (TOML or JSON) with a [usage] section.
    #[arg(long, value_name = "FILE")]
    pub catalog: PathBuf,
    /// Model tier, e.g. `standard`, `pro`, `ultra`.
    #[arg(long, value_name = "M")]
    pub model: String,
    /// Quality tier, e.g. `watermark`, `standard`, `hd`.
    #[arg(long, value_name = "Q")]
    pub quality: String,
    /// Seconds of usage (a whole number).
    #[arg(long, value_name = "S", allow_negative_numbers = true, value_parser = parse_seconds)]
    pub seconds: u64,
    /// Print the quote as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(after_help = "Each file holds one event, a JSON array of events, or JSON lines (one event per line).\n\
Stripe events (\"object\": \"event\"), Razorpay events (\"entity\": \"event\") and stored tollgate facts\n\
(\"key\" and \"type\") may be mixed; the provider is detected per event. The state does not depend on the\n\
order of the events (the reducer folds them in the providers' time order) and duplicates count once.\n\
The JSON schema of the output is described in cli/README.md.")]
pub struct ReplayArgs {
    /// Catalog file (TOML or JSON).
    #[arg(long, value_name = "FILE")]
    pub catalog: PathBuf,
    /// The time the state is computed for (credit lots expire up to it).
    #[arg(long, value_name = "T", value_parser = parse_now)]
    pub now: Option<Timestamp>,
    /// Fold only the events that happened at or before this time (to see the state at an
    /// earlier moment); `--now` defaults to it.
    #[arg(long, value_name = "T", value_parser = parse_now)]
    pub until: Option<Timestamp>,
    /// Event files, read in the order given (`-` reads standard input).
    #[arg(required = true, value_name = "EVENTS")]
    pub events: Vec<PathBuf>,
    /// Report malformed events on stderr and go on, instead of stopping at the first.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Print the state on one line.
    #[arg(long)]
    pub compact: bool,
    /// Never show the progress bar (it only shows on a terminal, for large inputs).
    #[arg(long)]
    pub no_progress: bool,
    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Also list ignored events (and why) on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
pub enum VerifyCommand {
    /// Verify a Stripe-Signature header (t=...,v1=...) against a payload.
    #[command(
        after_help = "Accepted when any v1 signature matches under any --secret and the signed time is within\n\
--tolerance of --now (in either direction). The payload must be the raw request body, byte for byte."
    )]
    Stripe(VerifyStripeArgs),
    /// Verify an X-Razorpay-Signature (hex HMAC-SHA256 of the body) against a payload.
    Razorpay(VerifyRazorpayArgs),
}

#[derive(Args, Debug)]
pub struct VerifyStripeArgs {
    /// Endpoint secret (whsec_...); repeat, or separate with commas, while rotating secrets.
    #[arg(
        long = "secret",
        value_name = "S",
        required = true,
        value_delimiter = ',',
        env = "TOLLGATE_STRIPE_SECRET",
        hide_env_values = true
    )]
    pub secrets: Vec<String>,
    /// The Stripe-Signature header value (a leading `Stripe-Signature:` is allowed).
    #[arg(long, value_name = "H")]
    pub header: String,
    /// File with the raw request body (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub payload: PathBuf,
    /// The time to check the signed timestamp against.
    #[arg(long, value_name = "T", value_parser = parse_now)]
    pub now: Option<Timestamp>,
    /// Largest accepted distance between the signed time and now, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = tollgate::verify::DEFAULT_TOLERANCE_SECS)]
    pub tolerance: u64,
    /// Do not check the signed time at all (for stored events).
    #[arg(long, conflicts_with_all = ["tolerance", "now"])]
    pub no_timestamp_check: bool,
}

#[derive(Args, Debug)]
pub struct VerifyRazorpayArgs {
    /// Webhook secret; repeat, or separate with commas, to accept any of several.
    #[arg(
        long = "secret",
        value_name = "S",
        required = true,
        value_delimiter = ',',
        env = "TOLLGATE_RAZORPAY_SECRET",
        hide_env_values = true
    )]
    pub secrets: Vec<String>,
    /// The X-Razorpay-Signature header value (a leading `X-Razorpay-Signature:` is allowed).
    #[arg(long, value_name = "SIG")]
    pub signature: String,
    /// File with the raw request body (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub payload: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum SignCommand {
    /// Print a Stripe-Signature header value for a payload.
    Stripe {
        /// Endpoint secret; repeat to sign with several (one v1 each, as during a rotation).
        #[arg(
            long = "secret",
            value_name = "S",
            required = true,
            value_delimiter = ',',
            env = "TOLLGATE_STRIPE_SECRET",
            hide_env_values = true
        )]
        secrets: Vec<String>,
        /// File with the raw request body (`-` reads standard input).
        #[arg(long, value_name = "FILE")]
        payload: PathBuf,
        /// The signing time (t=).
        #[arg(long, value_name = "T", value_parser = parse_now)]
        now: Option<Timestamp>,
    },
    /// Print an X-Razorpay-Signature value for a payload.
    Razorpay {
        /// Webhook secret.
        #[arg(long, value_name = "S", env = "TOLLGATE_RAZORPAY_SECRET", hide_env_values = true)]
        secret: String,
        /// File with the raw request body (`-` reads standard input).
        #[arg(long, value_name = "FILE")]
        payload: PathBuf,
    },
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Init { file, force } => init_cmd::run(&file, force),
        Command::Catalog(CatalogCommand::Check { file, json }) => catalog_cmd::check(&file, json),
        Command::Catalog(CatalogCommand::Push { file, store, by, no_activate, json }) => {
            store_cmd::push(&file, &store, by, !no_activate, json)
        }
        Command::Catalog(CatalogCommand::Diff { old, new, facts, url, service_key, now, json }) => {
            let source = match (facts, url) {
                (Some(f), _) => Some(diff_cmd::Facts::File(f)),
                (None, Some(url)) => Some(diff_cmd::Facts::Store(store_cmd::StoreArgs { url, service_key: service_key.unwrap_or_default() })),
                (None, None) => None,
            };
            diff_cmd::run(&old, &new, source, now, json)
        }
        Command::Catalog(CatalogCommand::Types { file, no_register }) => types_cmd::run(&file, !no_register),
        Command::Catalog(CatalogCommand::Schema) => util::write_stdout(schema_cmd::text().trim_end()),
        Command::Catalog(CatalogCommand::List { store, catalog, json }) => store_cmd::list(&store, catalog, json),
        Command::Catalog(CatalogCommand::Activate { version, store, catalog, by }) => {
            store_cmd::activate(&store, catalog, version, by)
        }
        Command::Quote(a) => quote_cmd::quote(&a),
        Command::Replay(a) => replay_cmd::replay(&a),
        Command::Verify(VerifyCommand::Stripe(a)) => sign_cmd::verify_stripe(&a),
        Command::Verify(VerifyCommand::Razorpay(a)) => sign_cmd::verify_razorpay(&a),
        Command::Sign(s) => sign_cmd::sign(&s),
        Command::Stripe(StripeCommand::Fixtures { catalog }) => {
            let c = util::load_catalog(&catalog)?;
            util::write_stdout(&util::to_json(&tollgate::checkout::stripe_fixtures(&c), false))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            crate::util::errln!("error: {}", f.message);
            ExitCode::from(1)
        }
    }
}
