//! `tollgate replay`: provider events from files -> facts -> the core's
//! reducer -> the billing state as JSON on stdout.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::value::RawValue;
use tollgate::billing::{detect_provider, parse_event, Fact, Parsed, Provider};

use crate::util::{display_path, load_catalog, now_or_clock, read_text, to_json, write_stdout, Failure};
use crate::ReplayArgs;

/// Inputs at least this large (events or bytes) get a progress bar on a terminal.
const PROGRESS_MIN_EVENTS: usize = 500;
const PROGRESS_MIN_BYTES: usize = 1 << 20;

/// Where an event is: its file, the line it starts on, and its position in a
/// JSON array when the file holds one.
#[derive(Clone, Debug)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub index: Option<usize>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(i) = self.index {
            write!(f, " (array index {i})")?;
        }
        Ok(())
    }
}

/// One event's raw text (a slice of its file, byte for byte) and where it is.
pub struct RawEvent<'a> {
    pub at: Location,
    pub raw: &'a str,
}

/// 1-based line of a byte offset, given the offsets of every newline.
fn line_at(newlines: &[usize], offset: usize) -> usize {
    newlines.partition_point(|&n| n < offset) + 1
}

fn offset_in(text: &str, part: &str) -> usize {
    part.as_ptr() as usize - text.as_ptr() as usize
}

/// Splits a file into events: one JSON value, a JSON array of values, or a
/// sequence of values (JSON lines, or values separated by any whitespace).
pub fn split_events<'a>(file: &str, text: &'a str) -> Result<Vec<RawEvent<'a>>, Failure> {
    let newlines: Vec<usize> = text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i).collect();
    let mut out = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    for item in stream {
        let raw = item.map_err(|e| {
            Failure::new(format!(
                "{file}:{}:{}: not JSON (one event, an array of events, or one event per line): {e}",
                e.line(),
                e.column()
            ))
        })?;
        let s = raw.get();
        let line = line_at(&newlines, offset_in(text, s));
        if s.starts_with('[') {
            let items: Vec<&RawValue> = serde_json::from_str(s)
                .map_err(|e| Failure::new(format!("{file}:{line}: not a JSON array of events: {e}")))?;
            for (i, el) in items.into_iter().enumerate() {
                let el = el.get();
                let at =
                    Location { file: file.to_string(), line: line_at(&newlines, offset_in(text, el)), index: Some(i) };
                out.push(RawEvent { at, raw: el });
            }
        } else {
            out.push(RawEvent { at: Location { file: file.to_string(), line, index: None }, raw: s });
        }
    }
    Ok(out)
}

/// "stripe event evt_1 (invoice.paid)" for messages, as far as the body tells.
fn describe(raw: &str, provider: Option<Provider>) -> String {
    let v: serde_json::Value = serde_json::from_str(raw).unwrap_or(serde_json::Value::Null);
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    match provider {
        Some(Provider::Stripe) => match (s("id"), s("type")) {
            (Some(id), Some(t)) => format!("stripe event {id} ({t})"),
            (Some(id), None) => format!("stripe event {id}"),
            (None, Some(t)) => format!("stripe event ({t})"),
            (None, None) => "stripe event".into(),
        },
        Some(Provider::Razorpay) => match s("event") {
            Some(t) => format!("razorpay event ({t})"),
            None => "razorpay event".into(),
        },
        Some(Provider::App) => match s("key") {
            Some(k) => format!("fact {k}"),
            None => "fact".into(),
        },
        None => "value".into(),
    }
}

/// What happened to one event.
pub enum Outcome {
    /// The facts, and what the core set aside of the event's metadata (its warnings,
    /// each naming the place, the event and the field).
    Facts(Provider, Vec<Fact>, Vec<String>),
    Ignored(Provider, String),
}

/// Parses one event with the provider its shape names; errors name the place and the field.
pub fn parse_one(catalog: &tollgate::Catalog, ev: &RawEvent<'_>) -> Result<Outcome, String> {
    let Some(provider) = detect_provider(ev.raw) else {
        let what = if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(ev.raw).is_ok() {
            "an object that is neither a Stripe event (\"object\": \"event\"), a Razorpay event (\"entity\": \"event\") nor a stored fact (\"key\" and \"type\")"
        } else {
            "not a JSON object; each event must be an object"
        };
        return Err(format!("{}: {what}", ev.at));
    };
    match parse_event(catalog, provider, ev.raw, None) {
        Ok(Parsed::Facts { facts, warnings, .. }) => {
            let what = describe(ev.raw, Some(provider));
            let warnings = warnings.into_iter().map(|w| format!("{}: {what}: {w}", ev.at)).collect();
            Ok(Outcome::Facts(provider, facts, warnings))
        }
        Ok(Parsed::Ignored { reason, .. }) => Ok(Outcome::Ignored(provider, reason)),
        // The message names the field (`missing field `data.object.customer``).
        Err(e) => Err(format!("{}: {}: {e} ({})", ev.at, describe(ev.raw, Some(provider)), e.code())),
    }
}

fn progress(args: &ReplayArgs, events: usize, bytes: usize) -> ProgressBar {
    let large = events >= PROGRESS_MIN_EVENTS || bytes >= PROGRESS_MIN_BYTES;
    if args.no_progress || !large || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(events as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {msg} [{bar:32}] {pos}/{len} events ({eta})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message("parsing");
    pb
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

pub fn replay(args: &ReplayArgs) -> Result<(), Failure> {
    let catalog = load_catalog(&args.catalog)?;
    let now = now_or_clock(args.now.or(args.until));

    let mut texts = Vec::with_capacity(args.events.len());
    for p in &args.events {
        texts.push((display_path(p), read_text(p)?));
    }
    let mut events = Vec::new();
    for (name, text) in &texts {
        let evs = split_events(name, text)?;
        if evs.is_empty() && !args.quiet {
            crate::util::errln!("warning: {name}: no events");
        }
        events.extend(evs);
    }
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();

    let pb = progress(args, events.len(), bytes);
    let mut facts: Vec<Fact> = Vec::new();
    let mut per_provider: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut ignored: Vec<(String, String)> = Vec::new();
    let mut invalid = 0usize;
    for ev in &events {
        match parse_one(&catalog, ev) {
            Ok(Outcome::Facts(p, fs, warnings)) => {
                *per_provider.entry(p.as_str()).or_default() += 1;
                facts.extend(fs);
                if !args.quiet {
                    for w in warnings {
                        pb.suspend(|| crate::util::errln!("warning: {w}"));
                    }
                }
            }
            Ok(Outcome::Ignored(p, reason)) => {
                *per_provider.entry(p.as_str()).or_default() += 1;
                ignored.push((ev.at.to_string(), reason));
            }
            Err(msg) if args.skip_invalid => {
                invalid += 1;
                pb.suspend(|| crate::util::errln!("skipped: {msg}"));
            }
            Err(msg) => {
                pb.finish_and_clear();
                return Err(Failure::new(msg));
            }
        }
        pb.inc(1);
    }
    let mut later = 0usize;
    if let Some(until) = args.until {
        let before = facts.len();
        facts.retain(|f| f.at <= until);
        later = before - facts.len();
    }
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        pb.set_style(style);
    }
    pb.set_message(format!("folding {}", plural(facts.len(), "fact")));
    pb.enable_steady_tick(Duration::from_millis(120));
    let state = tollgate::billing::reduce(&catalog, &facts, now);
    pb.finish_and_clear();

    write_stdout(&to_json(&state, args.compact))?;

    if args.verbose {
        for (at, reason) in &ignored {
            crate::util::errln!("ignored: {at}: {reason}");
        }
    }
    if !args.quiet {
        let providers: Vec<String> = per_provider.iter().map(|(p, n)| format!("{n} {p}")).collect();
        let mut line = format!("replayed {} from {}", plural(events.len(), "event"), plural(texts.len(), "file"));
        if !providers.is_empty() {
            line.push_str(&format!(" ({})", providers.join(", ")));
        }
        let mut skipped = if invalid > 0 { format!(", {invalid} invalid skipped") } else { String::new() };
        if let Some(until) = args.until {
            skipped.push_str(&format!(", {later} after {until} left out"));
        }
        line.push_str(&format!(
            ": {} ({} unique), {} ignored{skipped}; {}, {}, {} pending, {}, as of {}",
            plural(facts.len(), "fact"),
            state.facts.unique,
            ignored.len(),
            plural(state.subjects.len(), "subject"),
            plural(state.subscriptions.len(), "subscription"),
            state.pending.len(),
            plural(state.warnings.len(), "warning"),
            state.as_of
        ));
        crate::util::errln!("{line}");
    }
    Ok(())
}
