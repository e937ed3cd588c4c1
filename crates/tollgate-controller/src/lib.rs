//! Turns resources into snapshots: sources (YAML files; Kubernetes later) gather
//! [`Resources`], [`translate()`] turns them into one [`GatewayConfig`] per Gateway plus
//! [`Diagnostic`]s, and [`Versions`] numbers what changed for publishing.
//!
//! [`translate()`] is pure: no clock, no I/O, the same input always gives the same output.
//!
//! [`GatewayConfig`]: tollgate_config::GatewayConfig

mod diagnostic;
pub mod files;
mod resources;
mod translate;
mod versions;

pub use diagnostic::{Diagnostic, Severity};
pub use resources::{Resource, Resources};
pub use translate::{CONTROLLER_NAME, TranslateOptions, Translation, translate};
pub use versions::Versions;
