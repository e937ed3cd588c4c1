//! Status of the resources that only say whether they are valid: ModelProviders,
//! BudgetPolicies, MCPServers and JWTProviders report `Accepted`, `False` with the first error.

use serde_json::Map;
use tollgate_api::ResourceStatus;
use tollgate_api::upstream::ObjectMeta;

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
                .budget_policies
                .iter()
                .map(|r| (StatusKind::BudgetPolicy, &r.metadata, r.status.as_ref())),
        )
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
        out.extend(patch(inputs, findings, kind, meta, current));
    }
}

fn patch(
    inputs: &StatusInputs<'_>,
    findings: &Findings<'_>,
    kind: StatusKind,
    meta: &ObjectMeta,
    current: Option<&ResourceStatus>,
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
    let current_conditions = current.map_or(&[][..], |s| s.conditions.as_slice());
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
    let patch = merge_patch(to_json(&current), desired)?;
    Some(namespaced(kind, meta, patch))
}
