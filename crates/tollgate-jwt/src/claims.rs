//! Checks of a verified token's claims against its provider and the injected time, and the
//! mapping of those claims to a [`Principal`].

use serde_json::Value;

use crate::keyset::Claims;
use crate::{JwtError, JwtProvider};

/// Who a verified token speaks for: the identity the gateway authorises and accounts under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Name of the provider that issued the token.
    pub provider: String,
    /// The token's `sub` claim.
    pub subject: String,
    /// The provider's user claim, when it is present and a string.
    pub user: Option<String>,
    /// The provider's team claim: a string, or the first string of an array.
    pub team: Option<String>,
}

impl Principal {
    /// Checks the validity window and audience of verified `claims` at `now` (Unix seconds)
    /// and maps them to the principal they describe.
    pub(crate) fn from_claims(
        provider: &JwtProvider,
        claims: &Claims,
        now: u64,
    ) -> Result<Self, JwtError> {
        check_window(claims, now, provider.clock_skew.as_secs())?;
        check_audience(claims, &provider.audiences)?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(JwtError::MissingClaim("sub"))?;
        let user = claims.get(&provider.user_claim).and_then(Value::as_str);
        let team = provider
            .team_claim
            .as_ref()
            .and_then(|claim| match claims.get(claim)? {
                Value::String(team) => Some(team.as_str()),
                Value::Array(teams) => teams.iter().find_map(Value::as_str),
                _ => None,
            });
        Ok(Self {
            provider: provider.name.clone(),
            subject: subject.to_owned(),
            user: user.map(str::to_owned),
            team: team.map(str::to_owned),
        })
    }
}

/// A token is valid when `nbf - skew <= now < exp + skew`; `exp` is required.
fn check_window(claims: &Claims, now: u64, skew: u64) -> Result<(), JwtError> {
    let exp = numeric_date(claims, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    if now >= exp.saturating_add(skew) {
        return Err(JwtError::Expired);
    }
    match numeric_date(claims, "nbf")? {
        Some(nbf) if now < nbf.saturating_sub(skew) => Err(JwtError::NotYetValid),
        _ => Ok(()),
    }
}

/// Reads a NumericDate claim as whole seconds; fractions are dropped, and `null` counts as
/// absent.
fn numeric_date(claims: &Claims, name: &'static str) -> Result<Option<u64>, JwtError> {
    let Some(value) = claims.get(name).filter(|value| !value.is_null()) else {
        return Ok(None);
    };
    let seconds = value.as_u64().or_else(|| {
        let float = value.as_f64()?;
        // NumericDate may carry fractions of a second; dropping them is the intent.
        (float.is_finite() && float >= 0.0).then_some(float as u64)
    });
    seconds.map(Some).ok_or(JwtError::Malformed(
        "token time claim is not a non-negative number",
    ))
}

/// Passes when no audiences are configured, or `aud` (a string or an array) names one of them.
fn check_audience(claims: &Claims, accepted: &[String]) -> Result<(), JwtError> {
    if accepted.is_empty() {
        return Ok(());
    }
    let named = |aud: &str| accepted.iter().any(|a| a == aud);
    let ok = match claims.get("aud") {
        Some(Value::String(aud)) => named(aud),
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(named),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(JwtError::WrongAudience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeySource;
    use serde_json::json;

    fn provider() -> JwtProvider {
        JwtProvider::new("idp", "https://idp", KeySource::Inline(String::new()))
    }

    fn claims(value: Value) -> Claims {
        serde_json::from_value(value).unwrap()
    }

    fn window(value: Value, now: u64) -> Result<(), JwtError> {
        check_window(&claims(value), now, 30)
    }

    #[test]
    fn window_honours_skew_at_both_ends() {
        let token = json!({ "exp": 1000, "nbf": 500 });
        assert_eq!(window(token.clone(), 470), Ok(()));
        assert_eq!(window(token.clone(), 469), Err(JwtError::NotYetValid));
        assert_eq!(window(token.clone(), 1029), Ok(()));
        assert_eq!(window(token, 1030), Err(JwtError::Expired));
        assert_eq!(window(json!({ "exp": 1000.9 }), 1029), Ok(()));
        assert_eq!(
            window(json!({ "nbf": 1 }), 2),
            Err(JwtError::MissingClaim("exp"))
        );
        assert!(matches!(
            window(json!({ "exp": "soon" }), 2),
            Err(JwtError::Malformed(_))
        ));
        assert!(matches!(
            window(json!({ "exp": -5 }), 2),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn audience_needs_one_accepted_value() {
        let accepted = ["api".to_owned(), "gateway".to_owned()];
        let check = |value: Value| check_audience(&claims(value), &accepted);
        assert_eq!(check(json!({ "aud": "gateway" })), Ok(()));
        assert_eq!(check(json!({ "aud": ["other", "api"] })), Ok(()));
        assert_eq!(
            check(json!({ "aud": "other" })),
            Err(JwtError::WrongAudience)
        );
        assert_eq!(check(json!({ "aud": [] })), Err(JwtError::WrongAudience));
        assert_eq!(check(json!({})), Err(JwtError::WrongAudience));
        assert_eq!(
            check_audience(&claims(json!({ "aud": "other" })), &[]),
            Ok(())
        );
    }

    #[test]
    fn maps_user_and_team_claims() {
        let mut provider = provider();
        provider.user_claim = "email".into();
        provider.team_claim = Some("groups".into());
        let principal = |value: Value| Principal::from_claims(&provider, &claims(value), 0);
        let mapped =
            principal(json!({ "exp": 9, "sub": "u1", "email": "a@b", "groups": [7, "ml", "ops"] }));
        assert_eq!(
            mapped,
            Ok(Principal {
                provider: "idp".into(),
                subject: "u1".into(),
                user: Some("a@b".into()),
                team: Some("ml".into()),
            })
        );
        let unmapped =
            principal(json!({ "exp": 9, "sub": "u1", "email": 5, "groups": {} })).unwrap();
        assert_eq!((unmapped.user, unmapped.team), (None, None));
        assert_eq!(
            principal(json!({ "exp": 9 })),
            Err(JwtError::MissingClaim("sub"))
        );
    }
}
