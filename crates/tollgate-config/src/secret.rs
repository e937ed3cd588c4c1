//! A value that must never reach a client, a log or a trace.

use serde::{Deserialize, Deserializer, Serialize};
use std::cell::Cell;
use std::fmt;

/// What every secret is shown as.
const REDACTED: &str = "<redacted>";

thread_local! {
    /// Whether serializing on this thread may write secrets: true only inside [`revealing`].
    static REVEALING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `serialize` with secrets written in the clear, for [`crate::wire::encode`] only.
/// Serialization is synchronous, so a thread-local flag reaches exactly the values it
/// writes; the previous state comes back even if `serialize` panics.
pub(crate) fn revealing<T>(serialize: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            REVEALING.set(self.0);
        }
    }
    let _restore = Restore(REVEALING.replace(true));
    serialize()
}

/// Whether a serialization in progress writes secrets (see [`revealing`]).
pub(crate) fn revealed() -> bool {
    REVEALING.get()
}

/// A secret value (an upstream key, a private key). `Debug`, `Display` and `Serialize` all
/// print `<redacted>`; only [`Secret::expose`] yields the value, so every use is deliberate,
/// and [`crate::wire::encode`] the one serialization that carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if revealed() { &self.0 } else { REDACTED })
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// Reads a secret written by [`crate::wire::encode`]. A redacted one is refused: it comes
    /// from a display (the admin `/config`), and serving it would send `<redacted>` upstream.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        if value == REDACTED {
            return Err(serde::de::Error::custom(
                "the secret is redacted: this is a display of the configuration, not a snapshot",
            ));
        }
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let secret = Secret::new("sk-live-123");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
        assert_eq!(secret.expose(), "sk-live-123");
    }

    #[test]
    fn only_a_revealing_serialization_writes_the_value_and_it_reads_back() {
        let secret = Secret::new("sk-live-123");
        let revealed = revealing(|| serde_json::to_string(&secret).unwrap());
        assert_eq!(revealed, "\"sk-live-123\"");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
        assert_eq!(serde_json::from_str::<Secret>(&revealed).unwrap(), secret);
    }

    #[test]
    fn the_flag_is_restored_after_a_panic_and_on_nesting() {
        let caught = std::panic::catch_unwind(|| revealing(|| panic!("while serializing")));
        assert!(caught.is_err());
        assert!(!revealed());
        revealing(|| {
            revealing(|| ());
            assert!(revealed(), "an inner call leaves the outer one revealing");
        });
        assert!(!revealed());
    }

    #[test]
    fn a_redacted_secret_is_refused() {
        let error = serde_json::from_str::<Secret>("\"<redacted>\"").unwrap_err();
        assert!(error.to_string().contains("redacted"), "{error}");
    }
}
