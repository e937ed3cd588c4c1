//! Where translated configurations go, and what came back from the proxies that serve them.
//!
//! The controller hands every translation to a [`Publisher`] (the config push server, or an
//! in-process channel) and reads back, per Gateway, whether its proxies took the latest
//! version: that is the Gateway's `Programmed` condition.

use std::collections::BTreeMap;
use std::fmt;
use tollgate_api::BudgetUsage;
use tollgate_config::{GatewayConfig, ObjectRef};

/// Delivers configurations to proxies and reports what they made of them.
pub trait Publisher: Send + Sync {
    /// Publishes the configuration of every served Gateway; Gateways missing from `configs`
    /// are no longer served. Publishing the same configurations again must be cheap and must
    /// not change their versions.
    fn publish(&self, configs: &BTreeMap<ObjectRef, GatewayConfig>);

    /// What the proxies of `gateway` made of its latest published version.
    fn programmed(&self, gateway: &ObjectRef) -> Programmed;

    /// A counter that moves whenever what [`Publisher::programmed`] or
    /// [`Publisher::budget_usage`] returns may have changed (a proxy connected, acknowledged,
    /// rejected, reported or went away).
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Each BudgetPolicy's use of its limits, as the proxies last reported it; a policy no
    /// proxy reported on is missing.
    fn budget_usage(&self) -> BTreeMap<ObjectRef, Vec<BudgetUsage>> {
        BTreeMap::new()
    }
}

/// Whether the proxies of a Gateway run its latest configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Programmed {
    /// No proxy serving the Gateway is connected.
    NoProxies,
    /// Proxies are connected but none has acknowledged `version` yet.
    Pending {
        /// The latest published version.
        version: u64,
    },
    /// The proxies acknowledged `version`, the latest.
    Programmed {
        /// The latest published version.
        version: u64,
    },
    /// A proxy rejected `version`, the latest, and keeps serving an older one.
    Rejected {
        /// The latest published version.
        version: u64,
        /// The proxy that rejected it.
        proxy: String,
        /// Why it did.
        error: String,
    },
}

impl fmt::Display for Programmed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Programmed::NoProxies => f.write_str("no proxies"),
            Programmed::Pending { version } => write!(f, "version {version} pending"),
            Programmed::Programmed { version } => write!(f, "version {version} programmed"),
            Programmed::Rejected { version, proxy, .. } => {
                write!(f, "version {version} rejected by {proxy}")
            }
        }
    }
}
