//! The answer to send, in the types of the HTTP framework at hand: an
//! `http::StatusCode` (feature `http`), axum's `IntoResponse` (feature `axum`),
//! and actix-web's `Responder` and `ResponseError` (feature `actix`).
//!
//! Every answer is the status alone, with an empty body: an error's text is
//! for your logs, not for whoever sent the request (see
//! [`ReceiveError::status_code`]).

#[cfg(feature = "http")]
use crate::process::Accepted;
#[cfg(feature = "http")]
use crate::receive::{Handled, ReceiveError};

/// A status this crate answers with, in `http`'s type. Every one is a valid
/// code, so the fallback is never taken.
#[cfg(feature = "http")]
fn http_status(code: u16) -> http::StatusCode {
    http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(feature = "http")]
impl ReceiveError {
    /// [`status_code`](Self::status_code) as an `http::StatusCode` (feature `http`).
    ///
    /// ```
    /// use voyado_webhooks::ReceiveError;
    ///
    /// let error = ReceiveError::handler("database unavailable");
    /// assert_eq!(error.http_status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    /// ```
    pub fn http_status(&self) -> http::StatusCode {
        http_status(self.status_code())
    }
}

#[cfg(feature = "http")]
impl Handled {
    /// 200, as an `http::StatusCode` (feature `http`).
    pub fn http_status(&self) -> http::StatusCode {
        http_status(self.status_code())
    }
}

#[cfg(feature = "http")]
impl Accepted {
    /// 200, as an `http::StatusCode` (feature `http`).
    ///
    /// ```
    /// assert_eq!(voyado_webhooks::Accepted::Stored.http_status(), http::StatusCode::OK);
    /// ```
    pub fn http_status(&self) -> http::StatusCode {
        http_status(self.status_code())
    }
}

/// axum answers a handler's `Result<Accepted, ReceiveError>` (or `Handled`)
/// with the status alone.
#[cfg(feature = "axum")]
mod axum {
    use axum_core::response::{IntoResponse, Response};

    use super::{Accepted, Handled, ReceiveError};

    impl IntoResponse for ReceiveError {
        fn into_response(self) -> Response {
            self.http_status().into_response()
        }
    }

    impl IntoResponse for Handled {
        fn into_response(self) -> Response {
            self.http_status().into_response()
        }
    }

    impl IntoResponse for Accepted {
        fn into_response(self) -> Response {
            self.http_status().into_response()
        }
    }
}

/// actix-web answers a handler's `Result<Accepted, ReceiveError>` (or
/// `Handled`) with the status alone. actix-web 4 has its own `http` (0.2), so
/// the status is converted from the code.
#[cfg(feature = "actix")]
mod actix {
    use actix_web::body::BoxBody;
    use actix_web::http::StatusCode;
    use actix_web::{HttpRequest, HttpResponse, Responder, ResponseError};

    use crate::process::Accepted;
    use crate::receive::{Handled, ReceiveError};

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    impl ResponseError for ReceiveError {
        fn status_code(&self) -> StatusCode {
            status(ReceiveError::status_code(self))
        }

        /// The status alone: actix-web's default would send the error's text.
        fn error_response(&self) -> HttpResponse {
            HttpResponse::new(ResponseError::status_code(self))
        }
    }

    impl Responder for Handled {
        type Body = BoxBody;

        fn respond_to(self, _: &HttpRequest) -> HttpResponse {
            HttpResponse::new(status(self.status_code()))
        }
    }

    impl Responder for Accepted {
        type Body = BoxBody;

        fn respond_to(self, _: &HttpRequest) -> HttpResponse {
            HttpResponse::new(status(self.status_code()))
        }
    }
}
