//! Operating the receivers' inbox: what is stuck, why, and putting it right.
//!
//! ```text
//! cargo run --example inbox_admin --features sqlite,postgres,worker              # counts by state
//! cargo run --example inbox_admin --features sqlite,postgres,worker -- failed    # failed deliveries, with their errors
//! cargo run --example inbox_admin --features sqlite,postgres,worker -- dead      # out of attempts
//! cargo run --example inbox_admin --features sqlite,postgres,worker -- replay msg_2KWPBgLlAfxdpx2AI54pPJ85f4W
//! cargo run --example inbox_admin --features sqlite,postgres,worker -- purge 30  # done ones older than 30 days
//! ```
//!
//! It uses the same `DATABASE_URL` as the receiver examples (default: the SQLite
//! file `voyado-example.db`). A replayed delivery is due at once: on
//! PostgreSQL the replay notifies the running receivers' workers, and on SQLite
//! (another process) their next poll, within 5 seconds, takes it.

use std::error::Error;
use std::process::ExitCode;

use voyado_webhooks::{Inbox, OffsetDateTime, State};

#[allow(
    dead_code,
    reason = "the admin uses the database part of the receivers' support"
)]
mod support;
use support::Database;

async fn run<I: Inbox>(inbox: &I, args: &[String]) -> Result<(), Box<dyn Error>> {
    let list = |state| async move {
        let records = inbox.list(state, 100).await?;
        for record in &records {
            println!(
                "{}  attempts {}  received {}  due {}\n    {}",
                record.message_id,
                record.attempts,
                record.received_at,
                record.due_at,
                record.last_error.as_deref().unwrap_or("(no error)")
            );
        }
        println!("{} {} (at most 100 shown)", records.len(), state.as_str());
        Ok::<(), Box<dyn Error>>(())
    };
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["counts"] => println!("{:?}", inbox.counts().await?),
        ["failed"] => list(State::Failed).await?,
        ["dead"] => list(State::Dead).await?,
        ["pending"] => list(State::Pending).await?,
        ["replay", message_id] => match inbox.replay(message_id, OffsetDateTime::now_utc()).await? {
            true => println!("{message_id}: pending again, due now"),
            false => return Err(format!("{message_id}: no failed, dead or done delivery by that id").into()),
        },
        ["purge", days] => {
            let seconds = days
                .parse::<i64>()
                .ok()
                .and_then(|days| days.checked_mul(86_400))
                .ok_or_else(|| format!("purge takes a number of days, not {days:?}"))?;
            let before = OffsetDateTime::now_utc()
                .checked_sub(time::Duration::seconds(seconds))
                .ok_or("that is before the start of time")?;
            println!(
                "purged {} done deliveries received before {before}",
                inbox.purge_done(before).await?
            );
        }
        _ => {
            return Err(
                "usage: inbox_admin [counts | failed | dead | pending | replay MESSAGE_ID | purge DAYS]"
                    .into(),
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match support::database_from_env().await {
        Ok(Database::Sqlite(inbox)) => run(&inbox, &args).await,
        Ok(Database::Postgres(inbox)) => run(&inbox, &args).await,
        Err(error) => Err(error.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
