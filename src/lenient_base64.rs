//! The base64 engine for text that people paste or that arrives in either form:
//! standard alphabet, padding optional. Signing secrets and encrypted payloads
//! both use it.

/// Standard-alphabet base64, with or without padding.
pub(crate) const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);
