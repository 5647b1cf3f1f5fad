//! The key lists and the raw structs must agree: same keys, same order, compatible types.
//! (The error tests of the TOML reader are in `load/tests.rs`, through `Config`.)

use std::cell::Cell;

use serde::de::{self, Deserializer, Visitor};

use super::*;

/// The field names serde reads for `T`, taken from what its derived `Deserialize` passes to
/// `deserialize_struct`.
fn serde_fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe<'a>(&'a Cell<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let fields = Cell::new(&[][..]);
    let _ = T::deserialize(Probe(&fields));
    fields.get()
}

fn names(keys: Keys) -> Vec<&'static str> {
    keys.iter().map(|(k, _)| *k).collect()
}

#[test]
fn every_struct_has_the_keys_of_its_list_in_order() {
    assert_eq!(serde_fields::<RawConfig>(), names(RawConfig::KEYS));
    assert_eq!(serde_fields::<RawSessions>(), names(RawSessions::KEYS));
    assert_eq!(serde_fields::<RawReconnect>(), names(RawReconnect::KEYS));
    assert_eq!(serde_fields::<RawCatalog>(), names(RawCatalog::KEYS));
    assert_eq!(
        serde_fields::<RawToolOverride>(),
        names(RawToolOverride::KEYS)
    );
    assert_eq!(serde_fields::<RawServer>(), names(RawServer::KEYS));
    assert_eq!(serde_fields::<RawDiscovery>(), names(RawDiscovery::KEYS));
    assert_eq!(serde_fields::<RawAuth>(), names(RawAuth::KEYS));
    assert_eq!(serde_fields::<RawGateway>(), names(RawGateway::KEYS));
    assert_eq!(
        serde_fields::<RawGatewayAuth>(),
        names(RawGatewayAuth::KEYS)
    );
    assert_eq!(serde_fields::<RawGatewayJwt>(), names(RawGatewayJwt::KEYS));
}

/// A TOML value of `shape`, every key of every table set.
fn sample(shape: &Shape) -> String {
    match shape {
        Shape::String => "\"x\"".to_string(),
        Shape::Duration => "\"1s\"".to_string(),
        Shape::Integer => "1".to_string(),
        Shape::Bool => "true".to_string(),
        Shape::Strings => "[\"a\"]".to_string(),
        Shape::StringTable => "{ A = \"b\" }".to_string(),
        Shape::Table(keys) => format!("{{ {} }}", table(keys)),
        Shape::TableOf(inner) => format!("{{ name = {} }}", sample(inner)),
    }
}

fn table(keys: Keys) -> String {
    keys.iter()
        .map(|(key, shape)| format!("{key} = {}", sample(shape)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn a_document_with_every_key_passes_the_check_and_serde() {
    let text: String = RawConfig::KEYS
        .iter()
        .map(|(key, shape)| format!("{key} = {}\n", sample(shape)))
        .collect();
    let doc = DeTable::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let ctx = Ctx {
        file: None,
        toml: Some((&text, doc.get_ref())),
    };
    let raw = read(&ctx, &doc).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let server = &raw.servers.unwrap()["name"];
    assert_eq!(server.max_sessions, Some(1));
    assert!(server.reconnect.is_some() && raw.discovery.is_some());
}
