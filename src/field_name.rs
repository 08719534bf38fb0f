//! Matching received field names to the names a struct knows: exactly, or
//! ignoring ASCII case and `_`/`-` (Voyado's documentation uses camelCase and
//! PascalCase for the same fields).

/// Whether a received key names a field: exactly, or ignoring ASCII case and `_`/`-`.
pub(crate) fn key_matches(key: &str, name: &str) -> bool {
    fn folded(s: &str) -> impl Iterator<Item = u8> + '_ {
        s.bytes()
            .filter(|b| !matches!(b, b'_' | b'-'))
            .map(|b| b.to_ascii_lowercase())
    }
    key == name || folded(key).eq(folded(name))
}

/// Finds which field a key not spelled as documented names (see [`field_names!`]).
pub(crate) fn match_key<F: Copy>(key: &str, fields: &[(F, &[&str])]) -> Option<F> {
    fields
        .iter()
        .find(|(_, names)| names.iter().any(|name| key_matches(key, name)))
        .map(|(field, _)| *field)
}

/// Declares the fields an object is read into: an enum of them, the names each
/// is documented under (the first is the one written), and `of(key)`, which
/// finds the field a key names. A documented spelling is found by a `match`,
/// which is what the usual delivery pays for; any other by [`match_key`].
macro_rules! field_names {
    (enum $name:ident { $($field:ident = [$($spelling:literal),+],)* }) => {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum $name { $($field),* }

        impl $name {
            const SPELLINGS: &[($name, &[&str])] = &[$(($name::$field, &[$($spelling),+])),*];

            fn of(key: &str) -> Option<$name> {
                match key {
                    $( $($spelling)|+ => Some($name::$field), )*
                    other => $crate::field_name::match_key(other, Self::SPELLINGS),
                }
            }
        }
    };
}
pub(crate) use field_names;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_ignoring_case_and_separators() {
        assert!(key_matches("contactId", "contactId"));
        assert!(key_matches("ContactId", "contactId"));
        assert!(key_matches("contact_id", "contactId"));
        assert!(key_matches("CONTACT-ID", "contactId"));
        assert!(!key_matches("contactIds", "contactId"));
        assert!(!key_matches("contact", "contactId"));
        let fields: &[(u8, &[&str])] = &[(0, &["id", "eventId"]), (1, &["tenant"])];
        assert_eq!(match_key("event_id", fields), Some(0));
        assert_eq!(match_key("Tenant", fields), Some(1));
        assert_eq!(match_key("other", fields), None);
    }
}
