//! Replays captured deliveries: parses each file, dispatches it to a small
//! handler that prints one line per event, and reports every parse error.
//!
//! ```text
//! cargo run --example replay                 # the bundled fixtures
//! cargo run --example replay -- captured/    # files or directories of your own
//! ```
//!
//! Save a delivery's body from your tenant's Svix portal as a `.json` file to see
//! how this crate reads it. With `--features decrypt` and the Engage encryption
//! key in `VOYADO_WEBHOOK_ENCRYPTION_KEY`, encrypted deliveries are decrypted:
//!
//! ```text
//! VOYADO_WEBHOOK_ENCRYPTION_KEY=VoyadoEngageFixtureKey0123456789 \
//!   cargo run --example replay --features decrypt -- tests/fixtures/encrypted
//! ```
//!
//! The exit code is 1 if any file failed.

use std::convert::Infallible;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use time::format_description::well_known::Rfc3339;
use voyado_webhooks::{
    ContactPreferenceChanged, Context, Envelope, EventEnvelope, EventHandler, EventType, LoyaltyAddPoints,
    PointBalanceUpdated, Preference, RawPayload, RewardVoucherCreated,
};

/// Prints one line per event, after the name of the file it came from.
struct Printer<'a> {
    file: &'a str,
}

impl Printer<'_> {
    fn line<P>(&self, event: &Envelope<P>, contact: Option<&str>, detail: &str) {
        // A closed pipe (`| head`) just ends the output.
        let _ = writeln!(
            std::io::stdout(),
            "{}: {} id={} contact={} {detail}",
            self.file,
            event.event_type,
            event.id.as_deref().unwrap_or("-"),
            contact.unwrap_or("-"),
        );
    }
}

impl EventHandler for Printer<'_> {
    type Error = Infallible;

    fn contact_preference_changed(
        &self,
        _: &Context,
        preference: Preference,
        event: &Envelope<ContactPreferenceChanged>,
    ) -> Result<(), Infallible> {
        let value = match event.payload.accepts {
            Some(accepts) => format!("{preference} = {accepts}"),
            None => format!("{preference} (no value sent)"),
        };
        self.line(event, Some(&event.payload.contact_id), &value);
        Ok(())
    }

    fn loyalty_add_points(&self, _: &Context, event: &Envelope<LoyaltyAddPoints>) -> Result<(), Infallible> {
        let p = &event.payload;
        let reason = p
            .reason
            .as_deref()
            .or(p.description.as_deref())
            .unwrap_or("no reason given");
        self.line(
            event,
            Some(&p.contact_id),
            &format!("+{} points ({reason})", p.amount),
        );
        Ok(())
    }

    fn point_balance_updated(
        &self,
        _: &Context,
        event: &Envelope<PointBalanceUpdated>,
    ) -> Result<(), Infallible> {
        let p = &event.payload;
        let expires = match p.balance_expires.map(|at| at.format(&Rfc3339)) {
            Some(Ok(at)) => format!(", expires {at}"),
            _ => String::new(),
        };
        self.line(
            event,
            Some(&p.contact_id),
            &format!("balance {}{expires}", p.balance),
        );
        Ok(())
    }

    fn reward_voucher_created(
        &self,
        _: &Context,
        event: &Envelope<RewardVoucherCreated>,
    ) -> Result<(), Infallible> {
        let p = &event.payload;
        let currency = p.currency.as_deref().unwrap_or("");
        let detail = format!("voucher {} worth {} {currency}", p.unique_code, p.amount);
        self.line(event, Some(&p.contact_id), detail.trim_end());
        Ok(())
    }

    fn encrypted(&self, _: &Context, event: &Envelope<RawPayload>) -> Result<(), Infallible> {
        let size = event.payload.get().len();
        self.line(event, None, &format!("encrypted payload ({size} bytes)"));
        Ok(())
    }

    fn unknown(&self, _: &Context, event: &Envelope<RawPayload>) -> Result<(), Infallible> {
        let kind = match event.event_type {
            EventType::Other(_) => "unknown event type",
            _ => "no payload type published",
        };
        self.line(
            event,
            None,
            &format!("{kind}, payload kept ({} bytes)", event.payload.get().len()),
        );
        Ok(())
    }
}

/// The files to read under `path`: the file itself, or every `.json` file in the
/// directory and its subdirectories, in name order.
fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !path.is_dir() {
        files.push(path.to_owned());
        return Ok(());
    }
    let mut entries = std::fs::read_dir(path)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if entry.extension().is_some_and(|e| e == "json") {
            files.push(entry);
        }
    }
    Ok(())
}

#[cfg(feature = "decrypt")]
type Key = voyado_webhooks::Decryptor;
#[cfg(not(feature = "decrypt"))]
type Key = ();

#[cfg(feature = "decrypt")]
fn decryption_key(key: &str) -> Result<Key, String> {
    voyado_webhooks::Decryptor::new(key).map_err(|e| e.to_string())
}

#[cfg(not(feature = "decrypt"))]
fn decryption_key(_: &str) -> Result<Key, String> {
    Err("decrypting needs `--features decrypt`".into())
}

/// Decrypts an encrypted event when a key was given.
fn decrypt(event: EventEnvelope, key: &Option<Key>) -> Result<EventEnvelope, String> {
    match key {
        #[cfg(feature = "decrypt")]
        Some(decryptor) => event.decrypt(decryptor).map_err(|e| e.to_string()),
        _ => Ok(event),
    }
}

fn main() -> ExitCode {
    let mut paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        paths.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"));
    }

    let key = match std::env::var("VOYADO_WEBHOOK_ENCRYPTION_KEY")
        .ok()
        .map(|k| decryption_key(&k))
    {
        Some(Err(error)) => {
            eprintln!("error: VOYADO_WEBHOOK_ENCRYPTION_KEY: {error}");
            return ExitCode::FAILURE;
        }
        Some(Ok(key)) => Some(key),
        None => None,
    };

    let mut files = Vec::new();
    let mut failed = 0usize;
    for path in &paths {
        if let Err(error) = collect(path, &mut files) {
            eprintln!("error: {}: {error}", path.display());
            failed = failed.saturating_add(1);
        }
    }

    let cwd = std::env::current_dir().ok();
    for file in &files {
        // Shown relative to the working directory when it is below it.
        let name = cwd
            .as_deref()
            .and_then(|cwd| file.strip_prefix(cwd).ok())
            .unwrap_or(file)
            .display()
            .to_string();
        let body = match std::fs::read(file) {
            Ok(body) => body,
            Err(error) => {
                eprintln!("error: {}: {error}", file.display());
                failed = failed.saturating_add(1);
                continue;
            }
        };
        match EventEnvelope::from_slice(&body)
            .map_err(|e| e.to_string())
            .and_then(|e| decrypt(e, &key))
        {
            // A saved body has no Svix headers: the file name stands for the message id.
            Ok(event) => match event.dispatch(
                &Context::new(name.as_str(), voyado_webhooks::OffsetDateTime::now_utc()),
                &Printer { file: &name },
            ) {
                Ok(()) => {}
                Err(never) => match never {},
            },
            Err(error) => {
                eprintln!("error: {}: {error}", file.display());
                failed = failed.saturating_add(1);
            }
        }
    }

    let read = files.len().saturating_sub(failed);
    println!("\n{read} read, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
