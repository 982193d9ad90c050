//! Palisade's firewall decision engine: Kubernetes network policies with their exact
//! semantics, plus Palisade's own firewall rules, behind one `evaluate(flow) -> Verdict`.
//!
//! # Overview
//!
//! A [`State`] holds the inventory ([`Namespace`], [`Pod`], [`Node`]) and the policies, read
//! from Kubernetes-shaped YAML or JSON ([`State::from_yaml`]). Every policy kind is
//! normalised into one [`Policy`] model, with the apiserver's defaults applied
//! (`policyTypes`, `protocol: TCP`). An [`Engine`] indexes a state and decides [`Flow`]s;
//! the [`Verdict`] says, per direction, which tier, policy and rule decided, and
//! [`Engine::explain`] turns that into names. [`matrix`] evaluates every pod pair.
//! [`ObservedFlow`]s (the agent's flow records) feed [`learn`], which proposes Palisade rules
//! and NetworkPolicies allowing exactly the traffic seen, and [`simulate`], which replays
//! them against a draft policy.
//!
//! # Evaluation order
//!
//! 1. **Palisade firewall rules** ([`FirewallRule`] between [`NetworkObject`]s), by priority.
//!    They are the operator's own firewall, so they come first: the first matching `allow`
//!    or `block` rule decides the whole connection; a matching `alert` rule is recorded in
//!    [`Verdict::alert`] and does not change the verdict.
//! 2. Then each direction separately (egress at the source, ingress at the destination; a
//!    connection is allowed iff both are), skipping a direction whose subject is outside the
//!    cluster:
//!    1. **Admin tier**: AdminNetworkPolicy and ClusterNetworkPolicy `tier: Admin`, lowest
//!       priority first, rules in order; the first matching rule decides (`Allow`/`Accept`,
//!       `Deny`), or `Pass` skips the rest of the tier.
//!    2. **NetworkPolicy**: a pod is isolated for a direction iff some policy selecting it
//!       has that policy type; then the connection is allowed iff any rule of any of those
//!       policies matches, else denied.
//!    3. **Baseline tier**: BaselineAdminNetworkPolicy, then ClusterNetworkPolicy
//!       `tier: Baseline` by priority, first matching rule decides (`Pass` ends the tier).
//!    4. **Default**: allow.
//!
//! # Design: precomputed pod sets
//!
//! Policies change rarely and flows are many, so [`Engine::new`] does everything that does
//! not depend on the flow: the policies selecting each pod, per direction and tier, and for
//! every peer the set of pods it matches, as a bit set. A pod-to-pod verdict is then a walk
//! over the few policies that select the two pods, with one bit test per peer. Endpoints
//! that are not pods of the state (inline workloads, IPs) are evaluated from their labels.
//!
//! # Example
//!
//! ```
//! use palisade_firewall::{Engine, Flow, Protocol, State};
//!
//! let state = State::from_yaml(r#"
//! apiVersion: v1
//! kind: Pod
//! metadata: {name: web, namespace: shop, labels: {app: web}}
//! spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
//! status: {podIP: 10.0.0.2}
//! ---
//! apiVersion: v1
//! kind: Pod
//! metadata: {name: db, namespace: shop, labels: {app: db}}
//! status: {podIP: 10.0.0.3}
//! ---
//! apiVersion: networking.k8s.io/v1
//! kind: NetworkPolicy
//! metadata: {name: web-from-anywhere-on-http, namespace: shop}
//! spec:
//!   podSelector: {matchLabels: {app: web}}
//!   ingress: [{ports: [{port: http}]}]
//! "#)?;
//! let engine = Engine::new(&state)?;
//! let web = state.endpoint("shop/web")?;
//! let db = state.endpoint("shop/db")?;
//!
//! let verdict = engine.evaluate(&Flow::new(db.clone(), web.clone(), Protocol::Tcp, 8080));
//! assert!(verdict.allowed);
//! let verdict = engine.evaluate(&Flow::new(db, web, Protocol::Tcp, 9090));
//! assert!(!verdict.allowed);
//! # Ok::<(), palisade_firewall::Error>(())
//! ```
#![deny(missing_docs)]

mod engine;
mod error;
mod explain;
mod firewall;
mod flow;
mod flows;
mod inventory;
mod learn;
mod matrix;
mod net;
mod owned;
mod policy;
mod selector;
mod simulate;
mod state;
mod verdict;

pub use crate::engine::Engine;
pub use crate::error::{Error, ErrorKind};
pub use crate::explain::{DirectionExplanation, Explanation};
pub use crate::firewall::{
    FirewallRule, MAX_RULE_PORT_RANGES, NetworkObject, ObjectMembers, Pattern, RuleAction,
    WorkloadMatch,
};
pub use crate::flow::{Endpoint, Flow, PodId, Workload};
pub use crate::flows::{FlowEnd, MAX_FLOW_RECORDS, ObservedFlow, read_flows};
pub use crate::inventory::{ContainerPort, Namespace, Node, Pod};
pub use crate::learn::{Learned, learn};
pub use crate::matrix::{Matrix, Probe, matrix};
pub use crate::net::{CidrError, IpNet};
pub use crate::owned::OwnedEngine;
pub use crate::policy::{
    Action, Direction, IpBlock, NamespaceMatch, Peer, Policy, PolicyKind, PortMatch, PortSet,
    Protocol, Rule, Subject, Tier,
};
pub use crate::selector::{Labels, Operator, Requirement, Selector};
pub use crate::simulate::{Change, Simulation, simulate};
pub use crate::state::State;
pub use crate::verdict::{Decision, DirectionVerdict, FirewallRuleId, PolicyId, RuleRef, Verdict};
