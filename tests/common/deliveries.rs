//! Signed deliveries for the inbox and worker tests.

use voyado_webhooks::{Inbox, OffsetDateTime, Webhook};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A `loyalty.addPoints` body for `contact`.
pub fn body(contact: &str) -> Vec<u8> {
    format!(r#"{{"eventType": "loyalty.addPoints", "id": "e-{contact}", "payload": {{"amount": 10.50, "contactId": "{contact}"}}}}"#)
        .into_bytes()
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// What `accept` answers a delivery signed now.
pub async fn accept<I: Inbox + ?Sized>(webhook: &Webhook, inbox: &I, message_id: &str, body: &[u8]) -> u16 {
    match webhook
        .accept(&webhook.signed_headers(message_id, now(), body), body, inbox)
        .await
    {
        Ok(accepted) => accepted.status_code(),
        Err(error) => error.status_code(),
    }
}
