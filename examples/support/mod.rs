//! What the receiver examples share: the endpoint path, the development secret,
//! an example handler, and a signed sample request to try them with.

use std::error::Error;

use voyado_webhooks::{
    AsyncEventHandler, ContactPreferenceChanged, Context, Envelope, EventType, HeaderSource,
    LoyaltyAddPoints, MemoryIdempotencyStore, PointBalanceUpdated, Preference, RewardVoucherCreated, Webhook,
};

/// Where the endpoint is served.
pub const PATH: &str = "/webhooks/voyado";

/// For trying the example locally only. Never deploy with it: anyone who reads
/// this file could sign deliveries.
pub const DEVELOPMENT_SECRET: &str = "whsec_dm95YWRvLXdlYmhvb2tzIGxvY2FsIGRldmVsb3BtZW50IG9ubHk=";

/// What the endpoint needs: the signing secret, the record of handled
/// deliveries, and your handler.
pub struct Receiver<H> {
    /// The endpoint's signing secret (and decryption key, if any).
    pub webhook: Webhook,
    /// Svix message ids already handled. With several instances, use a store
    /// backed by your database instead (see `IdempotencyStore`).
    pub store: MemoryIdempotencyStore,
    /// Your event handler.
    pub handler: H,
}

impl<H> Receiver<H>
where
    H: AsyncEventHandler,
    H::Error: Into<Box<dyn Error + Send + Sync>>,
{
    /// Handles one delivery from its headers and raw body bytes (the signature is
    /// over those bytes: re-serialized JSON would never match), and returns the
    /// HTTP status to answer Svix with.
    pub async fn respond(&self, headers: &impl HeaderSource, body: &[u8]) -> u16 {
        match self
            .webhook
            .handle(headers, body, &self.store, &self.handler)
            .await
        {
            Ok(handled) => handled.status_code(),
            Err(error) => {
                eprintln!("webhook: {error}");
                error.status_code()
            }
        }
    }
}

/// An example handler: replace the prints with your own writes. Returning an
/// error answers 500, and Svix retries the delivery later.
pub struct PrintHandler;

impl AsyncEventHandler for PrintHandler {
    type Error = std::io::Error;

    async fn contact_preference_changed(
        &self,
        ctx: &Context,
        preference: Preference,
        event: &Envelope<ContactPreferenceChanged>,
    ) -> Result<(), Self::Error> {
        println!(
            "{} {}: {preference} = {:?}",
            ctx.message_id(),
            event.payload.contact_id,
            event.payload.accepts
        );
        Ok(())
    }

    async fn loyalty_add_points(
        &self,
        ctx: &Context,
        event: &Envelope<LoyaltyAddPoints>,
    ) -> Result<(), Self::Error> {
        let (contact, amount) = (&event.payload.contact_id, event.payload.amount);
        println!("{} {contact}: +{amount} points", ctx.message_id());
        Ok(())
    }

    async fn point_balance_updated(
        &self,
        ctx: &Context,
        event: &Envelope<PointBalanceUpdated>,
    ) -> Result<(), Self::Error> {
        let (contact, balance) = (&event.payload.contact_id, event.payload.balance);
        println!("{} {contact}: balance {balance}", ctx.message_id());
        Ok(())
    }

    async fn reward_voucher_created(
        &self,
        ctx: &Context,
        event: &Envelope<RewardVoucherCreated>,
    ) -> Result<(), Self::Error> {
        let voucher = &event.payload;
        println!(
            "{} {}: voucher {} worth {}",
            ctx.message_id(),
            voucher.contact_id,
            voucher.unique_code,
            voucher.amount
        );
        Ok(())
    }

    async fn unhandled(
        &self,
        ctx: &Context,
        event_type: &EventType,
        id: Option<&str>,
    ) -> Result<(), Self::Error> {
        println!(
            "{} not handled: {event_type} {}",
            ctx.message_id(),
            id.unwrap_or("(no id)")
        );
        Ok(())
    }
}

/// The signing secret from `VOYADO_WEBHOOK_SECRET` (or the development one, with
/// a warning), and the decryption key from `VOYADO_WEBHOOK_ENCRYPTION_KEY` if
/// payload encryption is switched on in Engage.
pub fn webhook_from_env() -> Result<Webhook, Box<dyn Error>> {
    let secret = match std::env::var("VOYADO_WEBHOOK_SECRET") {
        Ok(secret) => secret,
        Err(_) => {
            eprintln!(
                "warning: VOYADO_WEBHOOK_SECRET is not set; using the DEVELOPMENT secret. Never deploy this."
            );
            DEVELOPMENT_SECRET.to_owned()
        }
    };
    let webhook = Webhook::new(&secret)?;
    match std::env::var("VOYADO_WEBHOOK_ENCRYPTION_KEY") {
        Ok(key) => with_encryption_key(webhook, &key),
        // Encrypted deliveries are then answered 503: Svix retries them until the key is deployed.
        Err(_) => Ok(webhook),
    }
}

#[cfg(feature = "decrypt")]
fn with_encryption_key(webhook: Webhook, key: &str) -> Result<Webhook, Box<dyn Error>> {
    Ok(webhook.with_decryptor(voyado_webhooks::Decryptor::new(key)?))
}

#[cfg(not(feature = "decrypt"))]
fn with_encryption_key(_: Webhook, _: &str) -> Result<Webhook, Box<dyn Error>> {
    Err("VOYADO_WEBHOOK_ENCRYPTION_KEY is set: build with `--features decrypt` to use it".into())
}

/// Where to listen: `VOYADO_WEBHOOK_ADDR`, or `127.0.0.1:3000`.
pub fn listen_addr() -> String {
    std::env::var("VOYADO_WEBHOOK_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
}

/// What to print on start: where the endpoint listens, and a `curl` command
/// sending it a correctly signed sample event. Its timestamp is now, so it is
/// accepted for 5 minutes.
pub fn sample_curl(webhook: &Webhook, addr: &str) -> String {
    let body = r#"{"eventType":"loyalty.addPoints","id":"sample-1","isEncrypted":false,"payload":{"amount":100.10,"contactId":"0a3f7c2e-51b4-4d8e-b1a2-8c9d0e1f2a3b","pointDefinitionId":1,"source":"Automation","reason":"Birthday"},"tenant":"sample"}"#;
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let message_id = format!("msg_sample_{timestamp}");
    let signature = webhook.sign(&message_id, timestamp, body.as_bytes());
    format!(
        "listening on http://{addr}{PATH}\n\nsend a signed sample event (valid for 5 minutes):\n\n\
         curl -i http://{addr}{PATH} -H 'content-type: application/json' \\\n  -H 'svix-id: {message_id}' -H 'svix-timestamp: {timestamp}' \\\n  -H 'svix-signature: {signature}' \\\n  --data-raw '{body}'\n"
    )
}
