//! Turns resources into snapshots: sources ([`files`], [`kubernetes`]) gather [`Resources`],
//! [`translate()`] turns them into one [`GatewayConfig`] per Gateway plus [`Diagnostic`]s,
//! [`Versions`] numbers what changed for publishing, a [`Publisher`] delivers it to proxies,
//! [`status`] computes what every resource reports in its status, and [`budget_alerts`]
//! which budget thresholds the proxies' reported use crossed.
//!
//! [`translate()`] and [`status`] are pure: no clock, no I/O, the same input always gives the
//! same output. [`kubernetes`] is the thin shell around them that a cluster needs.
//!
//! [`GatewayConfig`]: tollgate_config::GatewayConfig

pub mod budget_alerts;
mod diagnostic;
pub mod files;
pub mod kubernetes;
mod publish;
mod resources;
pub mod status;
mod translate;
mod versions;

pub use diagnostic::{Diagnostic, Severity};
pub use publish::{Programmed, Publisher};
pub use resources::{Resource, Resources};
pub use translate::{
    CONTROLLER_NAME, ParentAttachment, RouteAttachments, RouteId, RouteKind, TranslateOptions,
    Translation, translate,
};
pub use versions::Versions;
