//! [`CommandJson`]: a queued command's JSON, kept as the text it is stored as.
//!
//! # Why text and not a `serde_json::Value`
//! A command goes from the intake to the queue, from the queue to the session, into the
//! session's window of commands in flight and into the group commit's records; it is read
//! again from the store at every delivery round. As a `Value` it was a tree of maps
//! (`BTreeMap`s for the envelope and its `params`) built at every read of a record and
//! copied node by node at every clone: `perf` put `memmove` at 7% and `BTreeMap` clones at
//! 5% of the gateway's CPU while it delivered commands. Only two places look inside it:
//! encoding the protocol frame (`commands::command_of`, which deserializes the command's
//! fields straight from the text) and the few that ask its type ([`CommandJson::kind`]).
//! Everything else stores, passes and clones it, so it is the validated JSON text, shared
//! (`Arc`): a clone is a reference count, a read from a store copies its bytes once and
//! checks them without building anything.
//!
//! # The stored formats do not change
//! It serializes as the JSON value it holds (not as a string), so the records of the redb
//! store and of the Redis queue keep the shape they had: `"command": {...}` inside the
//! record. A record written by an earlier version (its command serialized from a `Value`,
//! keys in sorted order) reads back as the same text; one written now (the command's fields
//! in their declaration order) reads with an earlier version too.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A command's JSON text (the contract §4 envelope: id, type, params, ttl_s, priority),
/// validated and shared. Cheap to clone. Equal when the JSON values are (whatever the
/// key order or spacing of the two texts).
#[derive(Clone)]
pub struct CommandJson(Arc<RawValue>);

impl CommandJson {
    /// `value` serialized (a command as parsed, for storage).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<CommandJson, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(|raw| CommandJson(Arc::from(raw)))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Deserializes the JSON into `T`, borrowing from the text where `T` can.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The command's `type` field, if it has one that is a string (nothing else is built).
    pub fn kind(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: Option<serde_json::Value>,
        }
        match self.parse::<Kind>().ok()?.kind? {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The JSON as a `Value` tree (for an API answer that embeds it).
    pub fn to_value(&self) -> serde_json::Value {
        self.parse().unwrap_or(serde_json::Value::Null)
    }
}

impl From<serde_json::Value> for CommandJson {
    fn from(value: serde_json::Value) -> Self {
        // Serializing a `Value` cannot fail (its map keys are strings).
        CommandJson::encode(&value)
            .unwrap_or_else(|_| CommandJson(Arc::from(RawValue::NULL.to_owned())))
    }
}

impl PartialEq for CommandJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
            || matches!(
                (
                    self.parse::<serde_json::Value>(),
                    other.parse::<serde_json::Value>()
                ),
                (Ok(a), Ok(b)) if a == b
            )
    }
}

impl std::fmt::Debug for CommandJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for CommandJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for CommandJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(|raw| CommandJson(Arc::from(raw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_as_the_json_it_holds_and_reads_back_as_text() {
        let c = CommandJson::from(json!({"id": "1", "type": "text", "params": {"text": "hé"}}));
        #[derive(Serialize, Deserialize)]
        struct Rec {
            command: CommandJson,
            n: u8,
        }
        let s = serde_json::to_string(&Rec {
            command: c.clone(),
            n: 2,
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"command":{"id":"1","params":{"text":"hé"},"type":"text"},"n":2}"#
        );
        let back: Rec = serde_json::from_str(&s).unwrap();
        assert_eq!(back.command.get(), c.get());
        assert_eq!(back.command, c);
        // Spacing and key order are kept as read; equality is the values'.
        let spaced: Rec = serde_json::from_str(
            r#"{"n":1,"command": { "type":"text" , "id":"1", "params":{"text":"h\u00e9"}} }"#,
        )
        .unwrap();
        assert_eq!(
            spaced.command.get(),
            r#"{ "type":"text" , "id":"1", "params":{"text":"h\u00e9"}}"#
        );
        assert_eq!(spaced.command, c);
        assert_ne!(CommandJson::from(json!({"id": "2"})), c);
    }

    #[test]
    fn kind_and_value() {
        let c = CommandJson::from(json!({"id": "1", "type": "upgrade", "params": {"x": [1, 2]}}));
        assert_eq!(c.kind().as_deref(), Some("upgrade"));
        assert_eq!(c.to_value()["params"]["x"][1], 2);
        assert_eq!(CommandJson::from(json!({"type": 5})).kind(), None);
        assert_eq!(CommandJson::from(json!({"id": "1"})).kind(), None);
        assert_eq!(CommandJson::from(json!([1])).kind(), None);
        let escaped: CommandJson = serde_json::from_str(r#"{"type":"up\u0067rade"}"#).unwrap();
        assert_eq!(escaped.kind().as_deref(), Some("upgrade"));
    }
}
