//! [`HeaderSource`]: request headers, from whatever HTTP framework holds them.

use std::collections::{BTreeMap, HashMap};

/// Request headers, read by name ignoring ASCII case.
///
/// Implemented for `http::HeaderMap` (feature `http`, as used by axum and hyper),
/// actix-web's `HeaderMap` (feature `actix`),
/// for slices and `Vec`s of name/value pairs, and for `HashMap` and `BTreeMap`.
/// For any other framework, implement it on a wrapper in a few lines:
///
/// ```
/// use voyado_webhooks::HeaderSource;
///
/// struct MyHeaders(Vec<(String, Vec<u8>)>);
///
/// impl HeaderSource for MyHeaders {
///     fn header(&self, name: &str) -> Option<&str> {
///         self.0
///             .iter()
///             .find(|(k, _)| k.eq_ignore_ascii_case(name))
///             .and_then(|(_, v)| std::str::from_utf8(v).ok())
///     }
/// }
///
/// let headers = MyHeaders(vec![("Svix-Id".into(), b"msg_1".to_vec())]);
/// assert_eq!(headers.header("svix-id"), Some("msg_1"));
/// ```
pub trait HeaderSource {
    /// The value of the first header called `name` (ignoring ASCII case), or
    /// `None` if there is none or its value is not text.
    fn header(&self, name: &str) -> Option<&str>;
}

impl<T: HeaderSource + ?Sized> HeaderSource for &T {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for [(K, V)] {
    #[inline]
    fn header(&self, name: &str) -> Option<&str> {
        find(self.iter().map(|(k, v)| (k, v)), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> HeaderSource for [(K, V); N] {
    #[inline]
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for Vec<(K, V)> {
    #[inline]
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<S> HeaderSource for HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        find(self, name)
    }
}

impl HeaderSource for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        find(self, name)
    }
}

/// Names in an `http::HeaderMap` are already lowercase; a value that is not
/// visible ASCII counts as absent.
#[cfg(feature = "http")]
impl HeaderSource for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

/// actix-web 4 has a header map of its own (on `http` 0.2); the same rules.
#[cfg(feature = "actix")]
impl HeaderSource for actix_web::http::header::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The first value whose name matches, ignoring ASCII case. Maps are searched
/// whole: their keys may be in any case.
#[inline]
fn find<'a, K, V>(pairs: impl IntoIterator<Item = (&'a K, &'a V)>, name: &str) -> Option<&'a str>
where
    K: AsRef<str> + ?Sized + 'a,
    V: AsRef<str> + ?Sized + 'a,
{
    // A plain loop: it runs three times per delivery, and measured faster than
    // `Iterator::find` over mapped pairs.
    for (k, v) in pairs {
        if same_name(k.as_ref(), name) {
            return Some(v.as_ref());
        }
    }
    None
}

/// `eq_ignore_ascii_case`, faster on header names: most arrive in the case
/// asked for (HTTP/2 requires lowercase), the last byte rejects most other names
/// at once (`svix-timestamp`, `svix-signature`), and the rest are compared
/// without a branch per byte.
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let differs = |x: &u8, y: &u8| x.to_ascii_lowercase() ^ y.to_ascii_lowercase();
    a.len() == b.len()
        && (a == b
            || a.last().zip(b.last()).is_none_or(|(x, y)| differs(x, y) == 0)
                && a.iter().zip(b).fold(0, |d, (x, y)| d | differs(x, y)) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_eq_ignore_ascii_case_does() {
        let names = [
            "svix-id",
            "SVIX-ID",
            "svix-ie",
            "svix-timestamp",
            "svix-signature",
            "",
            "å",
            "Å",
            "x",
        ];
        for a in names {
            for b in names {
                assert_eq!(same_name(a, b), a.eq_ignore_ascii_case(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn every_source_ignores_case() {
        let pairs = [("Svix-ID", "a"), ("svix-id", "b")];
        assert_eq!(pairs.header("svix-id"), Some("a"), "the first wins");
        assert_eq!(pairs.to_vec().header("SVIX-ID"), Some("a"));
        assert_eq!(pairs.as_slice().header("webhook-id"), None);
        let owned: Vec<(String, String)> = vec![("Webhook-Id".into(), "c".into())];
        assert_eq!(owned.header("webhook-id"), Some("c"));
        let hash: HashMap<String, String> = [("SVIX-TIMESTAMP".to_owned(), "1".to_owned())].into();
        assert_eq!(hash.header("svix-timestamp"), Some("1"));
        let btree: BTreeMap<String, String> = [("svix-Signature".to_owned(), "v1,x".to_owned())].into();
        assert_eq!(btree.header("svix-signature"), Some("v1,x"));
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_maps_skip_values_that_are_not_text() {
        let mut map = http::HeaderMap::new();
        map.insert("svix-id", http::HeaderValue::from_static("msg_1"));
        map.insert("svix-timestamp", http::HeaderValue::from_bytes(b"\xff1").unwrap());
        assert_eq!(map.header("Svix-Id"), Some("msg_1"));
        assert_eq!(map.header("svix-timestamp"), None);
    }
}
