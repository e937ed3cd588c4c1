//! Durations as the snapshot writes them: whole milliseconds with a unit (`"1500ms"`), as
//! `/config` shows them and the wire carries them. Gateway API durations, the only source of
//! configured ones, are whole milliseconds, so nothing is lost.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// A required duration (`#[serde(with = "crate::durations::millis")]`).
pub(crate) mod millis {
    use super::*;

    /// Writes `value` as `"<milliseconds>ms"`.
    pub(crate) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}ms", value.as_millis()))
    }

    /// Reads what [`serialize`] wrote.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An optional duration, `null` when unset (`#[serde(with = "crate::durations::optional_millis")]`).
pub(crate) mod optional_millis {
    use super::*;

    /// Writes `value` as [`millis::serialize`] does, or `null`.
    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => millis::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads what [`serialize`] wrote.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .as_deref()
            .map(parse)
            .transpose()
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `"<milliseconds>ms"`.
fn parse(text: &str) -> Result<Duration, String> {
    text.strip_suffix("ms")
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is not a duration in milliseconds such as \"1500ms\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_with_a_unit_and_nothing_else() {
        assert_eq!(parse("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse("1500ms"), Ok(Duration::from_millis(1500)));
        for bad in [
            "",
            "ms",
            "1500",
            "1.5ms",
            "-1ms",
            "+1ms",
            "1s",
            " 1ms",
            "99999999999999999999ms",
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains("milliseconds"), "{bad}: {error}");
        }
    }
}
