//! Status of the resources that only say whether they are valid: ModelProviders,
//! BudgetPolicies, MCPServers and JWTProviders report `Accepted`, `False` with the first error;
//! BudgetPolicies also each limit's use, as the proxies reported it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde_json::Map;
use tollgate_api::upstream::ObjectMeta;
use tollgate_config::ObjectRef;

use super::conditions::{ACCEPTED, Desired, REASON_ACCEPTED, conditions};
use super::{
    Findings, StatusInputs, StatusKind, StatusPatch, describe_first, merge_patch, name_of,
    namespace_of, namespaced, to_json,
};

pub(super) fn patches(
    inputs: &StatusInputs<'_>,
    findings: &Findings<'_>,
    out: &mut Vec<StatusPatch>,
) {
    let resources = inputs.resources;
    let objects = resources
        .model_providers
        .iter()
        .map(|r| (StatusKind::ModelProvider, &r.metadata, r.status.as_ref()))
        .chain(
            resources
                .mcp_servers
                .iter()
                .map(|r| (StatusKind::MCPServer, &r.metadata, r.status.as_ref())),
        )
        .chain(
            resources
                .jwt_providers
                .iter()
                .map(|r| (StatusKind::JWTProvider, &r.metadata, r.status.as_ref())),
        );
    for (kind, meta, current) in objects {
        let conditions = current.map_or(&[][..], |s| s.conditions.as_slice());
        out.extend(patch(
            inputs,
            findings,
            (kind, meta),
            conditions,
            to_json(&current),
            Map::new(),
        ));
    }
    for policy in &resources.budget_policies {
        let meta = &policy.metadata;
        let current = policy.status.as_ref();
        let conditions = current.map_or(&[][..], |s| s.conditions.as_slice());
        let mut usage = Map::new();
        let name = ObjectRef::new(namespace_of(meta), name_of(meta));
        if let Some(reported) = inputs.budget_usage.get(&name) {
            usage.insert("usage".into(), to_json(reported));
        }
        out.extend(patch(
            inputs,
            findings,
            (StatusKind::BudgetPolicy, meta),
            conditions,
            to_json(&current),
            usage,
        ));
    }
}

/// The patch making `Accepted` (and the fields of `more`) what they should be, if they are not.
fn patch(
    inputs: &StatusInputs<'_>,
    findings: &Findings<'_>,
    (kind, meta): (StatusKind, &ObjectMeta),
    current_conditions: &[Condition],
    current: serde_json::Value,
    more: Map<String, serde_json::Value>,
) -> Option<StatusPatch> {
    let found = findings.of(kind, namespace_of(meta), name_of(meta));
    let errors: Vec<_> = found.iter().copied().filter(|d| d.is_error()).collect();
    let accepted = match errors.first() {
        Some(first) => Desired::no(ACCEPTED, first.reason, describe_first(&errors)),
        None if found.is_empty() => Desired::yes(ACCEPTED, REASON_ACCEPTED, "valid"),
        None => Desired::yes(
            ACCEPTED,
            REASON_ACCEPTED,
            format!("valid, with warnings: {}", describe_first(found)),
        ),
    };
    let generation = meta.generation;
    let mut desired = Map::new();
    desired.insert("observedGeneration".into(), to_json(&generation));
    desired.insert(
        "conditions".into(),
        to_json(&conditions(
            vec![accepted],
            current_conditions,
            generation,
            inputs.now,
        )),
    );
    desired.extend(more);
    let patch = merge_patch(current, desired)?;
    Some(namespaced(kind, meta, patch))
}
