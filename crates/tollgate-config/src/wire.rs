//! The snapshot as bytes, as the controller pushes it to a proxy: JSON in an envelope that
//! names its format, `{"format":1,"version":N,"config":{...}}`.
//!
//! The configuration is written as `/config` shows it, except that [`encode`] writes secrets
//! and API key digests in the clear: this is the one serialization that carries them.
//! [`decode`] rebuilds every index (route table, budgets, API keys) through its constructor,
//! never trusting one from the wire, and refuses what the proxy could not serve: a value of
//! the wrong shape, an unknown enum variant, a bad duration or time zone, a backend naming a
//! provider that is not there, an argument rule whose regex does not compile, a Service
//! backend without a port or a rewrite to a path that is not one.

mod checks;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{GatewayConfig, Snapshot, secret};

/// The format [`encode`] writes and [`decode`] reads. A change that an older proxy would
/// misread (a field whose meaning changes, one it must not ignore) takes the next number.
///
/// Format 2 added host names, HTTP match conditions and Service routes, which a proxy of
/// format 1 would ignore and so serve requests meant for nobody.
const FORMAT: u64 = 2;

/// Why bytes could not be decoded into a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The bytes are not a snapshot envelope: not JSON, or `format`, `version` or `config`
    /// missing or of the wrong type.
    #[error("not a Tollgate snapshot: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The envelope names a format this build does not read.
    #[error(
        "snapshot format {found} cannot be read: this build reads format {supported} \
         (the controller and the proxy must run compatible versions)"
    )]
    UnsupportedFormat {
        /// The envelope's format.
        found: u64,
        /// The one format this build reads.
        supported: u64,
    },
    /// The configuration does not fit the snapshot's schema, or holds something the proxy
    /// cannot serve.
    #[error("invalid snapshot: {path}: {reason}")]
    Invalid {
        /// Where, as a JSON path from the envelope (`config.providers[0].kind`).
        path: String,
        /// What is wrong there.
        reason: String,
    },
}

/// The envelope as written: the configuration is serialized straight into it.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    format: u64,
    version: u64,
    config: &'a GatewayConfig,
}

/// The envelope as read: the configuration is kept as text until the format is known to be
/// ours, so an unknown format is reported as such rather than as a schema error.
#[derive(Deserialize)]
struct Envelope<'a> {
    format: u64,
    version: u64,
    #[serde(borrow)]
    config: &'a RawValue,
}

/// The bytes a proxy receives for `snapshot`, secrets included.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let envelope = EnvelopeRef {
        format: FORMAT,
        version: snapshot.version,
        config: &snapshot.config,
    };
    secret::revealing(|| serde_json::to_vec(&envelope))
        .expect("a snapshot always serializes: its maps are keyed by strings")
}

/// The snapshot [`encode`] wrote, checked as described in the module documentation.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, WireError> {
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).map_err(|e| {
        // A well-formed envelope of another format may lack what this one requires: its
        // format number is the better answer.
        format_of(bytes)
            .filter(|format| *format != FORMAT)
            .map_or(WireError::Malformed(e), unsupported)
    })?;
    if envelope.format != FORMAT {
        return Err(unsupported(envelope.format));
    }
    let mut json = serde_json::Deserializer::from_str(envelope.config.get());
    let config: GatewayConfig =
        serde_path_to_error::deserialize(&mut json).map_err(|e| WireError::Invalid {
            path: checks::path_in_config(&e.path().to_string()),
            reason: checks::without_position(e.inner()),
        })?;
    checks::servable(&config)?;
    Ok(Snapshot {
        version: envelope.version,
        config,
    })
}

/// The `format` of an envelope that is JSON but not necessarily ours.
fn format_of(bytes: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Probe {
        format: u64,
    }
    serde_json::from_slice::<Probe>(bytes)
        .ok()
        .map(|probe| probe.format)
}

fn unsupported(found: u64) -> WireError {
    WireError::UnsupportedFormat {
        found,
        supported: FORMAT,
    }
}

#[cfg(test)]
mod tests;
