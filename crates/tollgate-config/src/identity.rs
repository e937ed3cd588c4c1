//! Callers and the API keys that identify them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use subtle::ConstantTimeEq;

/// Who is calling: the key they presented and the team and user it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// A stable, non-secret name for the key (`namespace/secret-name`); never the key itself.
    pub key_id: String,
    /// The team that owns the key, if labelled.
    pub team: Option<String>,
    /// The user that owns the key, if labelled.
    pub user: Option<String>,
    /// When the credential stops being accepted, in Unix seconds.
    pub expires_at: Option<i64>,
}

/// Callers allowed to use something: anyone in one of the lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Teams allowed.
    pub teams: Vec<String>,
    /// Users allowed.
    pub users: Vec<String>,
    /// Key ids (`namespace/secret-name`) allowed.
    pub keys: Vec<String>,
}

impl Access {
    /// Whether `identity` is in one of the lists.
    pub fn allows(&self, identity: &Identity) -> bool {
        let listed = |list: &[String], value: &Option<String>| {
            value.as_ref().is_some_and(|v| list.contains(v))
        };
        self.keys.contains(&identity.key_id)
            || listed(&self.teams, &identity.team)
            || listed(&self.users, &identity.user)
    }
}

/// The API keys callers may present, held as SHA-256 digests so the snapshot never carries
/// them in the clear beyond translation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], Identity>,
}

impl ApiKeys {
    /// Adds a key given in plaintext. A key already held by another identity is left with
    /// it, and that identity is returned as the error.
    pub fn insert(&mut self, key: &str, identity: Identity) -> Result<(), Identity> {
        self.insert_digest(digest(key), identity)
    }

    /// Adds a key known only by its SHA-256 digest, as [`ApiKeys::insert`] does.
    pub fn insert_digest(&mut self, digest: [u8; 32], identity: Identity) -> Result<(), Identity> {
        match self.by_digest.entry(digest) {
            Entry::Occupied(held) => Err(held.get().clone()),
            Entry::Vacant(free) => {
                free.insert(identity);
                Ok(())
            }
        }
    }

    /// The identity a presented key belongs to. The lookup goes through the key's digest and
    /// the final comparison is constant-time, so timing reveals nothing about stored keys.
    pub fn authenticate(&self, presented: &str) -> Option<&Identity> {
        let wanted = digest(presented);
        let (stored, identity) = self.by_digest.get_key_value(&wanted)?;
        bool::from(stored.ct_eq(&wanted)).then_some(identity)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

impl Serialize for ApiKeys {
    /// Lists the identities by key id, never the keys or their digests; only a snapshot for the
    /// wire ([`crate::wire::encode`]) carries the digests, so the proxy can check keys.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if crate::secret::revealed() {
            let mut stored: Vec<StoredKey<&Identity>> = self
                .by_digest
                .iter()
                .map(|(digest, identity)| StoredKey {
                    sha256: HexDigest(*digest),
                    identity,
                })
                .collect();
            stored.sort_unstable_by_key(|key| key.sha256.0);
            return serializer.collect_seq(stored);
        }
        let mut identities: Vec<&Identity> = self.by_digest.values().collect();
        identities.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        serializer.collect_seq(identities)
    }
}

impl<'de> Deserialize<'de> for ApiKeys {
    /// Reads the keys a wire snapshot carries, by digest; a digest given twice is refused.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut keys = ApiKeys::default();
        for StoredKey { sha256, identity } in Vec::<StoredKey<Identity>>::deserialize(deserializer)?
        {
            keys.insert_digest(sha256.0, identity).map_err(|held| {
                serde::de::Error::custom(format_args!(
                    "key digest {} is given twice (also for {})",
                    hex::encode(sha256.0),
                    held.key_id
                ))
            })?;
        }
        Ok(keys)
    }
}

/// One API key as a wire snapshot carries it: its digest, and whose it is.
#[derive(Serialize, Deserialize)]
struct StoredKey<I> {
    sha256: HexDigest,
    identity: I,
}

/// A SHA-256 digest written as 64 hex digits.
struct HexDigest([u8; 32]);

impl Serialize for HexDigest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for HexDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&text, &mut digest).map_err(|e| {
            serde::de::Error::custom(format_args!("{text:?} is not 64 hex digits: {e}"))
        })?;
        Ok(Self(digest))
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            key_id: "default/alice-key".into(),
            team: Some("research".into()),
            user: Some("alice".into()),
            expires_at: None,
        }
    }

    #[test]
    fn authenticates_known_keys_only() {
        let mut keys = ApiKeys::default();
        keys.insert("tg-alice", alice()).unwrap();
        assert_eq!(keys.authenticate("tg-alice"), Some(&alice()));
        assert_eq!(keys.authenticate("tg-alic"), None);
        assert_eq!(keys.authenticate(""), None);
    }

    #[test]
    fn access_allows_anyone_listed_by_key_team_or_user() {
        let by = |teams: &[&str], users: &[&str], keys: &[&str]| Access {
            teams: teams.iter().map(|s| s.to_string()).collect(),
            users: users.iter().map(|s| s.to_string()).collect(),
            keys: keys.iter().map(|s| s.to_string()).collect(),
        };
        assert!(by(&["research"], &[], &[]).allows(&alice()));
        assert!(by(&[], &["alice"], &[]).allows(&alice()));
        assert!(by(&[], &[], &["default/alice-key"]).allows(&alice()));
        assert!(!by(&["finance"], &["bob"], &["default/bob-key"]).allows(&alice()));
        assert!(!Access::default().allows(&alice()));
        let anonymous = Identity {
            key_id: "default/k".into(),
            ..Identity::default()
        };
        assert!(!by(&["research"], &["alice"], &[]).allows(&anonymous));
    }

    #[test]
    fn a_key_stored_as_its_digest_authenticates() {
        let mut keys = ApiKeys::default();
        keys.insert_digest(digest("tg-alice"), alice()).unwrap();
        assert_eq!(keys.authenticate("tg-alice"), Some(&alice()));
        assert!(
            keys.insert("tg-alice", alice()).is_err(),
            "same key, same digest"
        );
    }

    #[test]
    fn serialises_without_keys() {
        let mut keys = ApiKeys::default();
        keys.insert("tg-alice", alice()).unwrap();
        let json = serde_json::to_string(&keys).unwrap();
        assert!(!json.contains("tg-alice\""), "{json}");
        assert!(json.contains("default/alice-key"));
    }
}
