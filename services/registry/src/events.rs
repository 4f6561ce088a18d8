//! Change events: announced with Postgres NOTIFY inside the writing transaction (so they exist
//! only once it commits), received by every replica's listener (see [`crate::listener`]), used
//! to invalidate that replica's caches and pushed to `Watch` streams.

use serde::{Deserialize, Serialize};

/// One committed change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    SchemaRegistered {
        subject: String,
        version: i32,
        id: i32,
    },
    VersionDeleted {
        subject: String,
        version: i32,
        permanent: bool,
    },
    CompatibilityChanged {
        subject: String,
        level: Option<String>,
    },
    ModeChanged {
        subject: String,
        mode: Option<String>,
    },
    /// Events may have been missed.
    Resync,
}

impl Event {
    /// The subject the event concerns; `None` for registry-wide events.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Event::SchemaRegistered { subject, .. } | Event::VersionDeleted { subject, .. } => {
                Some(subject)
            }
            Event::CompatibilityChanged { subject, .. } | Event::ModeChanged { subject, .. } => {
                (!subject.is_empty()).then_some(subject.as_str())
            }
            Event::Resync => None,
        }
    }

    pub fn to_payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
