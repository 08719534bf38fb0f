//! [`EventType`]: the `eventType` of a delivery.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

/// Generates [`EventType`] from the table in [`crate::events`].
macro_rules! event_type {
    (
        [$($args:tt)*]
        typed { $( $(#[$doc:meta])* $variant:ident = $wire:literal => $payload:ident, $method:ident $(, Preference::$pref:ident)? as $kind:ident $(($entity:ident))?; )* }
        untyped { $( $(#[$udoc:meta])* $uvariant:ident = $uwire:literal => $umethod:ident as $ukind:ident $(($uentity:ident))?; )* }
    ) => {
        /// The `eventType` of a delivery.
        ///
        /// Known names are matched ignoring ASCII case; any other name is kept as
        /// [`EventType::Other`], so an event Voyado adds tomorrow is still received.
        ///
        /// ```
        /// use voyado_webhooks::EventType;
        ///
        /// assert_eq!(EventType::from("loyalty.addPoints"), EventType::LoyaltyAddPoints);
        /// assert_eq!(EventType::from("LOYALTY.ADDPOINTS").as_str(), "loyalty.addPoints");
        /// let new = EventType::from("order.shipped");
        /// assert_eq!(new, EventType::Other("order.shipped".into()));
        /// assert_eq!(new.to_string(), "order.shipped");
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum EventType {
            $( #[doc = concat!("`", $wire, "`: ")] $(#[$doc])* $variant, )*
            $( #[doc = concat!("`", $uwire, "`: ")] $(#[$udoc])* $uvariant, )*
            /// Any other event type, with its name as received.
            Other(String),
        }

        impl EventType {
            /// Every named event type.
            pub(crate) const KNOWN: &[EventType] = &[$(EventType::$variant,)* $(EventType::$uvariant,)*];

            /// The event types with a typed payload, and their wire names.
            #[cfg(test)]
            pub(crate) const TYPED: &[&str] = &[$($wire),*];

            /// The wire name, such as `reward.voucher.created`.
            pub fn as_str(&self) -> &str {
                match self {
                    $( EventType::$variant => $wire, )*
                    $( EventType::$uvariant => $uwire, )*
                    EventType::Other(name) => name,
                }
            }
        }
    };
}

crate::events::events!(event_type);

impl EventType {
    fn known(name: &str) -> Option<EventType> {
        let known = || Self::KNOWN.iter();
        known()
            .find(|known| known.as_str() == name)
            .or_else(|| known().find(|known| known.as_str().eq_ignore_ascii_case(name)))
            .cloned()
    }
}

impl From<&str> for EventType {
    fn from(name: &str) -> Self {
        Self::known(name).unwrap_or_else(|| EventType::Other(name.to_owned()))
    }
}

impl From<String> for EventType {
    fn from(name: String) -> Self {
        Self::known(&name).unwrap_or(EventType::Other(name))
    }
}

impl FromStr for EventType {
    type Err = Infallible;
    fn from_str(name: &str) -> Result<Self, Infallible> {
        Ok(EventType::from(name))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = EventType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event type name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EventType, E> {
                Ok(EventType::from(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<EventType, E> {
                Ok(EventType::from(v))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_round_trips() {
        for known in EventType::KNOWN {
            assert_eq!(&EventType::from(known.as_str()), known);
            assert_eq!(&EventType::from(known.as_str().to_uppercase()), known);
            let json = serde_json::to_string(known).ok();
            assert_eq!(json, Some(format!("\"{}\"", known.as_str())));
            let back: Option<EventType> = json.and_then(|j| serde_json::from_str(&j).ok());
            assert_eq!(back.as_ref(), Some(known));
        }
    }

    /// The recipe in `src/events.rs`: a typed event is not done without its
    /// fixture and its README row.
    #[test]
    fn every_typed_event_has_a_fixture_and_a_readme_row() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
        for wire in EventType::TYPED {
            let fixture = root.join("tests/fixtures").join(format!("{wire}.json"));
            assert!(fixture.is_file(), "no fixture {}", fixture.display());
            assert!(
                readme.contains(&format!("| `{wire}` |")),
                "no README row for {wire}"
            );
        }
    }

    #[test]
    fn other_names_keep_their_text() {
        let other = EventType::from("Order.Shipped");
        assert_eq!(other.as_str(), "Order.Shipped");
        // A known name in another casing is the known type, in its own spelling.
        assert_eq!(EventType::from("Contact.Deleted").as_str(), "contact.deleted");
        assert_eq!("x.y".parse::<EventType>(), Ok(EventType::Other("x.y".into())));
    }
}
