//! The apply planner: from the applied [`DesiredState`] and a new one, the ordered list of
//! [`Step`]s that turns the first into the second, or the reason it may not be applied.
//! Pure: it opens nothing and reads no file; `Runtime::apply` executes the plan (see
//! `runtime.rs`) and `dry_run` reports [`Plan::summary`] without executing it.
//!
//! Invariants of a plan (each checked by a test below):
//! - Generations: a state from the API with generation 0 gets the applied one + 1, an
//!   older one is refused ([`PlanError::Stale`]); the initial state is taken as is. A state
//!   without NFS settings keeps the applied ones.
//! - A store is removed or replaced only when no share of the new state uses it; a share
//!   never changes its metadata, local or remote store (its data lives there).
//! - Order of the steps (the executor's phases follow it): stores are opened (metadata,
//!   local, remote) before the shares that use them, shares are opened, then edited, then
//!   removed, and removed stores (remote, local, metadata) close after the shares that
//!   used them.
//! - A store's `Change` opens a new instance with the other stores and retires the old one
//!   with the removed stores; a share's `Change` edits its options in place.
//! - Nothing is executed when the plan is empty and the state is equal ([`Plan::noop`]).
//!
//! Extending: a new resource kind (e.g. users, groups, grants) adds one [`Step`] variant
//! with an [`Action`], one `diff` call in [`plan`] at its place in the order, its rank in
//! [`Step::rank`] and its line in [`Step::summary`].

use crate::config::{
    self, ConfigError, LocalBlockStoreCfg, MetadataStoreCfg, RemoteBlockStoreCfg, ShareCfg,
};
use crate::error::ControlError;
use crate::state::DesiredState;
use dittofs_nfs::export::{ExportError, ExportPolicy};
use dittofs_types::ShareId;
use std::fmt;

/// What happens to one named resource.
#[derive(Clone, Debug, PartialEq)]
pub enum Action<T> {
    Add(T),
    /// Stores: a new instance replaces the old one. Shares: options edited in place.
    Change {
        old: T,
        new: T,
    },
    Remove(T),
}

impl<T> Action<T> {
    /// The configuration after the step (`None` for a removal).
    pub fn new_cfg(&self) -> Option<&T> {
        match self {
            Action::Add(n) | Action::Change { new: n, .. } => Some(n),
            Action::Remove(_) => None,
        }
    }

    /// The configuration before the step (`None` for an addition).
    pub fn old_cfg(&self) -> Option<&T> {
        match self {
            Action::Remove(o) | Action::Change { old: o, .. } => Some(o),
            Action::Add(_) => None,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Action::Add(_) => "added",
            Action::Change { .. } => "changed",
            Action::Remove(_) => "removed",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Action::Add(_) => 0,
            Action::Change { .. } => 1,
            Action::Remove(_) => 2,
        }
    }
}

/// One step of a plan: one variant per resource kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    MetadataStore(Action<MetadataStoreCfg>),
    LocalStore(Action<LocalBlockStoreCfg>),
    RemoteStore(Action<RemoteBlockStoreCfg>),
    Share(Action<ShareCfg>),
    /// NFS adapter settings (take effect at the next start).
    Nfs,
}

/// One line of an apply's report (`ApplyConfig`'s `changes`, dry run or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: &'static str,
    pub name: String,
    pub action: &'static str,
    pub detail: String,
}

impl Step {
    /// Report order: by resource kind, then added, changed, removed.
    fn rank(&self) -> (u8, u8) {
        match self {
            Step::MetadataStore(a) => (0, a.rank()),
            Step::LocalStore(a) => (1, a.rank()),
            Step::RemoteStore(a) => (2, a.rank()),
            Step::Share(a) => (3, a.rank()),
            Step::Nfs => (4, 0),
        }
    }

    /// The step's line in the report.
    pub fn summary(&self) -> Change {
        let line = |kind, name: &str, action, detail: String| Change {
            kind,
            name: name.to_owned(),
            action,
            detail,
        };
        match self {
            Step::MetadataStore(a) => {
                let detail = a.new_cfg().map(|m| m.kind.clone()).unwrap_or_default();
                line("metadata_store", a.name(), a.word(), detail)
            }
            Step::LocalStore(a) => {
                let detail = if a.new_cfg().is_some() {
                    "local fs"
                } else {
                    "local"
                };
                line("block_store", a.name(), a.word(), detail.into())
            }
            Step::RemoteStore(a) => {
                let detail = a
                    .new_cfg()
                    .map_or("remote".into(), |r| format!("remote {}", r.kind));
                line("block_store", a.name(), a.word(), detail)
            }
            Step::Share(a) => line("share", a.name(), a.word(), share_detail(a)),
            Step::Nfs => line(
                "adapter",
                "nfs",
                "changed",
                "takes effect at the next start".into(),
            ),
        }
    }
}

impl<T: Named> Action<T> {
    /// The resource's name (the same before and after).
    pub fn name(&self) -> &str {
        match self {
            Action::Add(c) | Action::Remove(c) | Action::Change { new: c, .. } => c.name(),
        }
    }
}

fn share_detail(a: &Action<ShareCfg>) -> String {
    match a {
        Action::Add(s) => format!("metadata {}, local {}", s.metadata, s.local),
        Action::Change { old, new } => share_diff(old, new),
        Action::Remove(_) => "no longer served; its data stays in its stores".into(),
    }
}

/// What a share edit changes, in words (for the report).
fn share_diff(a: &ShareCfg, b: &ShareCfg) -> String {
    let onoff = |t: &config::TrashCfg| if t.enabled { "on" } else { "off" };
    let edits = [
        (a.read_only != b.read_only)
            .then(|| format!("read_only {} -> {}", a.read_only, b.read_only)),
        (a.squash != b.squash || a.anon_uid != b.anon_uid || a.anon_gid != b.anon_gid)
            .then(|| "identity squashing".into()),
        (a.allowed_clients != b.allowed_clients).then(|| "allowed_clients".into()),
        (a.secure != b.secure).then(|| format!("secure {} -> {}", a.secure, b.secure)),
        (a.trash != b.trash).then(|| format!("trash {} -> {}", onoff(&a.trash), onoff(&b.trash))),
        (a.chunking != b.chunking).then(|| "chunking (applies to new writes)".into()),
        (a.root_mode != b.root_mode)
            .then(|| "root_mode (recorded; the root exists already, chmod it instead)".into()),
    ];
    edits
        .into_iter()
        .flatten()
        .collect::<Vec<String>>()
        .join(", ")
}

/// The three kinds of store, as named in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Metadata,
    Local,
    Remote,
}

impl StoreKind {
    /// The kind's key in [`DesiredState::users_of`].
    fn key(self) -> &'static str {
        match self {
            StoreKind::Metadata => "metadata",
            StoreKind::Local => "local",
            StoreKind::Remote => "remote",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Metadata => "metadata",
            StoreKind::Local => "local block",
            StoreKind::Remote => "remote block",
        })
    }
}

/// Why a desired state may not be applied. Messages name the object and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "generation {given} is older than the applied generation {applied}; re-read the state and retry"
    )]
    Stale { given: u64, applied: u64 },
    /// A store still used by a share of the new state is removed.
    #[error("{kind} store {store:?} is in use by share {share:?}; remove the share first")]
    RemovedInUse {
        kind: StoreKind,
        store: String,
        share: String,
    },
    /// A store still used by a share of the new state changes its configuration.
    #[error("{kind} store {store:?} is in use by share {share:?}; {}",
        if *.kind == StoreKind::Remote { "it cannot change" } else { "its type and path cannot change" })]
    ChangedInUse {
        kind: StoreKind,
        store: String,
        share: String,
    },
    /// A share names another remote block store than before.
    #[error(
        "share {0:?}: its remote block store cannot change (its data was uploaded there); remove the share and create it again"
    )]
    ShareRemoteChanged(String),
    /// A share names another metadata or local block store than before.
    #[error(
        "share {0:?}: its metadata and local block store cannot change (its data lives there); remove the share and create it again"
    )]
    ShareStoresChanged(String),
    #[error("{}", .0.to_string().replace("invalid configuration: ", ""))]
    Invalid(#[source] ConfigError),
    #[error("share {share:?}: {source}")]
    Export {
        share: String,
        #[source]
        source: ExportError,
    },
}

impl From<PlanError> for ControlError {
    fn from(e: PlanError) -> ControlError {
        match e {
            PlanError::Stale { .. } => ControlError::Stale(e.to_string()),
            PlanError::Invalid(_) | PlanError::Export { .. } => {
                ControlError::Invalid(e.to_string())
            }
            _ => ControlError::Precondition(e.to_string()),
        }
    }
}

/// The NFS export policy of a share.
pub fn export_policy(id: ShareId, s: &ShareCfg) -> Result<ExportPolicy, PlanError> {
    ExportPolicy::from_options(id, &s.squash, s.anon_uid, s.anon_gid, &s.allowed_clients)
        .map(|p| p.with_secure(s.secure))
        .map_err(|source| PlanError::Export {
            share: s.name.clone(),
            source,
        })
}

/// How the generation of the new state is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// The state the server starts with: as given.
    AsGiven,
    /// A change through the API: 0 means "next", older than the applied one is stale.
    Checked,
}

/// An apply's plan: the state to reach and the steps, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The new state, generation and inherited NFS settings filled in.
    pub desired: DesiredState,
    /// The applied state's generation (a dry run reports it).
    pub current_generation: u64,
    pub steps: Vec<Step>,
}

impl Plan {
    /// The report: the steps by resource kind, then added, changed, removed.
    pub fn summary(&self) -> Vec<Change> {
        let mut steps: Vec<&Step> = self.steps.iter().collect();
        steps.sort_by_key(|s| s.rank());
        steps.into_iter().map(Step::summary).collect()
    }

    /// NFS settings changed: they take effect at the next start.
    pub fn restart_required(&self) -> bool {
        self.steps.contains(&Step::Nfs)
    }

    /// Nothing to do: no step and the same state (generation included).
    pub fn noop(&self, cur: &DesiredState) -> bool {
        self.steps.is_empty() && self.desired == *cur
    }
}

/// The plan from `cur` (applied) to `desired`, or why `desired` may not be applied.
pub fn plan(
    cur: &DesiredState,
    mut desired: DesiredState,
    generation: Generation,
) -> Result<Plan, PlanError> {
    if generation == Generation::Checked {
        if desired.generation == 0 {
            desired.generation = cur.generation + 1;
        } else if desired.generation < cur.generation {
            return Err(PlanError::Stale {
                given: desired.generation,
                applied: cur.generation,
            });
        }
    }
    if desired.nfs.is_none() {
        desired.nfs = cur.nfs.clone();
    }
    validate(cur, &desired)?;
    let steps = steps(cur, &desired)?;
    Ok(Plan {
        current_generation: cur.generation,
        desired,
        steps,
    })
}

/// Checks of the new state alone, and of the stores its shares keep using.
fn validate(cur: &DesiredState, desired: &DesiredState) -> Result<(), PlanError> {
    // Stores still needed by a share: a clearer message than "not defined".
    let existed = |store: &str| {
        cur.metadata_stores.iter().any(|m| m.name == store)
            || cur.block_stores.local.iter().any(|l| l.name == store)
    };
    for s in &desired.shares {
        let needed = [
            (
                StoreKind::Metadata,
                &s.metadata,
                desired.metadata_stores.iter().any(|m| m.name == s.metadata),
            ),
            (
                StoreKind::Local,
                &s.local,
                desired.block_stores.local.iter().any(|l| l.name == s.local),
            ),
        ];
        if let Some((kind, store, _)) = needed
            .into_iter()
            .find(|(_, st, present)| !present && existed(st))
        {
            return Err(PlanError::RemovedInUse {
                kind,
                store: store.clone(),
                share: s.name.clone(),
            });
        }
    }
    config::validate_state(
        &desired.metadata_stores,
        &desired.block_stores,
        &desired.shares,
    )
    .map_err(PlanError::Invalid)?;
    for s in &desired.shares {
        export_policy(ShareId(1), s)?;
    }
    Ok(())
}

/// The steps in execution order, after the checks of what changes.
fn steps(cur: &DesiredState, desired: &DesiredState) -> Result<Vec<Step>, PlanError> {
    let meta = diff(&cur.metadata_stores, &desired.metadata_stores);
    let local = diff(&cur.block_stores.local, &desired.block_stores.local);
    let remote = diff(&cur.block_stores.remote, &desired.block_stores.remote);
    let shares = diff(&cur.shares, &desired.shares);
    check_shares(&shares)?;
    let in_use = InUse { cur, desired };
    in_use.check(StoreKind::Metadata, &meta, false)?;
    in_use.check(StoreKind::Remote, &remote, true)?;
    in_use.check(StoreKind::Local, &local, false)?;

    let mut out = Vec::new();
    out.extend(select(&meta, true, Step::MetadataStore));
    out.extend(select(&local, true, Step::LocalStore));
    out.extend(select(&remote, true, Step::RemoteStore));
    for rank in 0..3 {
        out.extend(
            shares
                .iter()
                .filter(|a| a.rank() == rank)
                .cloned()
                .map(Step::Share),
        );
    }
    out.extend(select(&remote, false, Step::RemoteStore));
    out.extend(select(&local, false, Step::LocalStore));
    out.extend(select(&meta, false, Step::MetadataStore));
    if desired.nfs != cur.nfs {
        out.push(Step::Nfs);
    }
    Ok(out)
}

/// The store steps that open an instance (`opening`: additions and changes) or only
/// close one (removals), in diff order.
fn select<T: Clone>(
    actions: &[Action<T>],
    opening: bool,
    step: fn(Action<T>) -> Step,
) -> impl Iterator<Item = Step> + '_ {
    let opens = move |a: &&Action<T>| a.new_cfg().is_some() == opening;
    actions.iter().filter(opens).cloned().map(step)
}

/// A share keeps its stores: its data lives there.
fn check_shares(shares: &[Action<ShareCfg>]) -> Result<(), PlanError> {
    for a in shares {
        if let Action::Change { old, new } = a {
            if old.remote != new.remote {
                return Err(PlanError::ShareRemoteChanged(new.name.clone()));
            }
            if old.metadata != new.metadata || old.local != new.local {
                return Err(PlanError::ShareStoresChanged(new.name.clone()));
            }
        }
    }
    Ok(())
}

/// Stores that a share of the new state still uses (and used before) may not change.
struct InUse<'a> {
    cur: &'a DesiredState,
    desired: &'a DesiredState,
}

impl InUse<'_> {
    /// The first share of both states using `store`.
    fn user(&self, kind: StoreKind, store: &str) -> Option<String> {
        let users = self.cur.users_of(kind.key(), store);
        users.into_iter().find(|u| self.desired.share(u).is_some())
    }

    /// Refuses a changed store in use, and with `removals` a removed one.
    fn check<T: Named>(
        &self,
        kind: StoreKind,
        actions: &[Action<T>],
        removals: bool,
    ) -> Result<(), PlanError> {
        let changed = actions.iter().filter_map(|a| match a {
            Action::Change { old, .. } => Some((old.name(), true)),
            Action::Remove(o) if removals => Some((o.name(), false)),
            _ => None,
        });
        for (store, is_change) in changed.collect::<Vec<_>>() {
            if let Some(share) = self.user(kind, store) {
                let store = store.to_owned();
                return Err(if is_change {
                    PlanError::ChangedInUse { kind, store, share }
                } else {
                    PlanError::RemovedInUse { kind, store, share }
                });
            }
        }
        Ok(())
    }
}

/// A configuration item with a name (its identity in a diff).
pub trait Named {
    fn name(&self) -> &str;
}

impl Named for MetadataStoreCfg {
    fn name(&self) -> &str {
        &self.name
    }
}
impl Named for LocalBlockStoreCfg {
    fn name(&self) -> &str {
        &self.name
    }
}
impl Named for RemoteBlockStoreCfg {
    fn name(&self) -> &str {
        &self.name
    }
}
impl Named for ShareCfg {
    fn name(&self) -> &str {
        &self.name
    }
}

/// The actions turning the named items `cur` into `new`: additions and changes in the
/// order of `new`, then removals in the order of `cur`.
fn diff<T: Named + PartialEq + Clone>(cur: &[T], new: &[T]) -> Vec<Action<T>> {
    let find = |list: &[T], n: &str| list.iter().find(|x| x.name() == n).cloned();
    let added = new
        .iter()
        .filter(|n| find(cur, n.name()).is_none())
        .cloned()
        .map(Action::Add);
    let changed = new.iter().filter_map(|n| {
        find(cur, n.name())
            .filter(|c| c != n)
            .map(|old| Action::Change {
                old,
                new: n.clone(),
            })
    });
    let removed = cur
        .iter()
        .filter(|c| find(new, c.name()).is_none())
        .cloned()
        .map(Action::Remove);
    added.chain(changed).chain(removed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NfsSection;

    fn meta(name: &str) -> MetadataStoreCfg {
        MetadataStoreCfg {
            name: name.into(),
            kind: "memory".into(),
            path: None,
        }
    }

    fn local(name: &str) -> LocalBlockStoreCfg {
        LocalBlockStoreCfg {
            name: name.into(),
            kind: "fs".into(),
            path: None,
            max_size: 0,
        }
    }

    fn remote(name: &str) -> RemoteBlockStoreCfg {
        RemoteBlockStoreCfg {
            name: name.into(),
            kind: "memory".into(),
            ..Default::default()
        }
    }

    fn share(name: &str, m: &str, l: &str) -> ShareCfg {
        ShareCfg {
            metadata: m.into(),
            local: l.into(),
            ..ShareCfg::with_defaults(name)
        }
    }

    fn with_remote(mut s: ShareCfg, r: &str) -> ShareCfg {
        s.remote = Some(r.into());
        s
    }

    fn state(
        metas: &[&str],
        locals: &[&str],
        remotes: &[&str],
        shares: Vec<ShareCfg>,
    ) -> DesiredState {
        let mut st = DesiredState {
            metadata_stores: metas.iter().map(|n| meta(n)).collect(),
            shares,
            ..Default::default()
        };
        st.block_stores.local = locals.iter().map(|n| local(n)).collect();
        st.block_stores.remote = remotes.iter().map(|n| remote(n)).collect();
        st
    }

    fn line(c: &Change) -> String {
        format!("{} {} {}", c.kind, c.name, c.action)
    }

    fn exec_order(p: &Plan) -> Vec<String> {
        p.steps.iter().map(|s| line(&s.summary())).collect()
    }

    /// Stores are opened before the shares that use them, and shares are removed before
    /// the stores they used.
    fn assert_dependencies_ordered(p: &Plan) {
        let pos = |kind: &str, name: &str, add: bool| {
            p.steps.iter().position(|s| {
                let c = s.summary();
                c.kind == kind && c.name == name && (c.action == "removed") != add
            })
        };
        for step in &p.steps {
            if let Step::Share(Action::Add(s)) = step {
                let at = pos("share", &s.name, true);
                for (kind, store) in [("metadata_store", &s.metadata), ("block_store", &s.local)] {
                    if let Some(open) = pos(kind, store, true) {
                        assert!(open < at.unwrap(), "{store} opened after {}", s.name);
                    }
                }
            }
            if let Step::Share(Action::Remove(s)) = step {
                let at = pos("share", &s.name, false);
                for (kind, store) in [("metadata_store", &s.metadata), ("block_store", &s.local)] {
                    if let Some(close) = pos(kind, store, false) {
                        assert!(close > at.unwrap(), "{store} closed before {}", s.name);
                    }
                }
            }
        }
    }

    #[test]
    fn steps_come_in_execution_order() {
        let full = || {
            state(
                &["m"],
                &["l"],
                &["r"],
                vec![with_remote(share("/a", "m", "l"), "r")],
            )
        };
        let mut read_only = full();
        read_only.shares[0].read_only = true;
        let mut moved = full();
        moved.metadata_stores[0].path = Some("/elsewhere".into());
        moved.shares.clear();
        let mut nfs = full();
        nfs.nfs = Some(NfsSection::default());
        let swapped = state(&["m2"], &["l2"], &["r"], vec![share("/b", "m2", "l2")]);
        let cases: Vec<(&str, DesiredState, DesiredState, Vec<&str>)> = vec![
            ("nothing", full(), full(), vec![]),
            (
                "everything added",
                DesiredState::default(),
                full(),
                vec![
                    "metadata_store m added",
                    "block_store l added",
                    "block_store r added",
                    "share /a added",
                ],
            ),
            (
                "everything removed",
                full(),
                DesiredState::default(),
                vec![
                    "share /a removed",
                    "block_store r removed",
                    "block_store l removed",
                    "metadata_store m removed",
                ],
            ),
            (
                "share moved to new stores",
                full(),
                swapped,
                vec![
                    "metadata_store m2 added",
                    "block_store l2 added",
                    "share /b added",
                    "share /a removed",
                    "block_store l removed",
                    "metadata_store m removed",
                ],
            ),
            ("share edited", full(), read_only, vec!["share /a changed"]),
            (
                "unused store replaced with its share removed",
                full(),
                moved,
                vec!["metadata_store m changed", "share /a removed"],
            ),
            ("nfs settings", full(), nfs, vec!["adapter nfs changed"]),
        ];
        for (what, cur, desired, want) in cases {
            let p = plan(&cur, desired, Generation::Checked).unwrap();
            assert_eq!(exec_order(&p), want, "{what}");
            assert_dependencies_ordered(&p);
            assert_eq!(p.restart_required(), what == "nfs settings", "{what}");
        }
    }

    #[test]
    fn summary_is_in_report_order_with_details() {
        let cur = state(&["m"], &["l"], &[], vec![share("/a", "m", "l")]);
        let desired = state(&["m2"], &["l2"], &["r"], vec![share("/b", "m2", "l2")]);
        let p = plan(&cur, desired, Generation::Checked).unwrap();
        let got: Vec<(String, String)> = p
            .summary()
            .iter()
            .map(|c| (line(c), c.detail.clone()))
            .collect();
        let want = [
            ("metadata_store m2 added", "memory"),
            ("metadata_store m removed", ""),
            ("block_store l2 added", "local fs"),
            ("block_store l removed", "local"),
            ("block_store r added", "remote memory"),
            ("share /b added", "metadata m2, local l2"),
            (
                "share /a removed",
                "no longer served; its data stays in its stores",
            ),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn share_edits_are_described() {
        let cur = state(&["m"], &["l"], &[], vec![share("/a", "m", "l")]);
        let mut desired = cur.clone();
        desired.shares[0].read_only = true;
        desired.shares[0].anon_uid = 7;
        desired.shares[0].trash.enabled = true;
        desired.shares[0].root_mode = 0o755;
        let p = plan(&cur, desired, Generation::Checked).unwrap();
        assert_eq!(
            p.summary()[0].detail,
            "read_only false -> true, identity squashing, trash off -> on, \
             root_mode (recorded; the root exists already, chmod it instead)"
        );
    }

    #[test]
    fn refusals() {
        let base = || {
            state(
                &["m", "m2"],
                &["l"],
                &["r", "r2"],
                vec![with_remote(share("/a", "m", "l"), "r")],
            )
        };
        let edit = |f: &dyn Fn(&mut DesiredState)| {
            let mut d = base();
            f(&mut d);
            d
        };
        let cases: Vec<(&str, DesiredState, &str, tonic::Code)> = vec![
            (
                "metadata store of a kept share removed",
                edit(&|d| d.metadata_stores.retain(|m| m.name != "m")),
                "metadata store \"m\" is in use by share \"/a\"; remove the share first",
                tonic::Code::FailedPrecondition,
            ),
            (
                "local store of a kept share removed",
                edit(&|d| d.block_stores.local.clear()),
                "local block store \"l\" is in use by share \"/a\"; remove the share first",
                tonic::Code::FailedPrecondition,
            ),
            (
                "metadata store in use changed",
                edit(&|d| d.metadata_stores[0].path = Some("/x".into())),
                "metadata store \"m\" is in use by share \"/a\"; its type and path cannot change",
                tonic::Code::FailedPrecondition,
            ),
            (
                "local store in use changed",
                edit(&|d| d.block_stores.local[0].path = Some("/x".into())),
                "local block store \"l\" is in use by share \"/a\"; its type and path cannot change",
                tonic::Code::FailedPrecondition,
            ),
            (
                "remote store in use changed",
                edit(&|d| d.block_stores.remote[0].prefix = "p/".into()),
                "remote block store \"r\" is in use by share \"/a\"; it cannot change",
                tonic::Code::FailedPrecondition,
            ),
            (
                "share moved to another metadata store",
                edit(&|d| d.shares[0].metadata = "m2".into()),
                "share \"/a\": its metadata and local block store cannot change (its data lives there); remove the share and create it again",
                tonic::Code::FailedPrecondition,
            ),
            (
                "share moved to another remote",
                edit(&|d| d.shares[0].remote = Some("r2".into())),
                "share \"/a\": its remote block store cannot change (its data was uploaded there); remove the share and create it again",
                tonic::Code::FailedPrecondition,
            ),
            (
                "invalid store type",
                edit(&|d| d.metadata_stores[1].kind = "bogus".into()),
                "metadata store \"m2\": type \"bogus\" is not one of memory, sled",
                tonic::Code::InvalidArgument,
            ),
            (
                "invalid export",
                edit(&|d| d.shares[0].allowed_clients = vec!["10.0.0.0/99".into()]),
                "share \"/a\": ",
                tonic::Code::InvalidArgument,
            ),
            (
                "stale generation",
                edit(&|d| d.generation = 4),
                "generation 4 is older than the applied generation 5; re-read the state and retry",
                tonic::Code::Aborted,
            ),
        ];
        for (what, desired, msg, code) in cases {
            let mut cur = base();
            cur.generation = 5;
            let err = ControlError::from(plan(&cur, desired, Generation::Checked).unwrap_err());
            assert!(err.to_string().starts_with(msg), "{what}: {err}");
            assert_eq!(err.grpc_code(), code, "{what}: {err}");
        }
    }

    #[test]
    fn generations_and_inherited_settings() {
        let mut cur = state(&["m"], &["l"], &[], vec![]);
        cur.generation = 5;
        cur.nfs = Some(NfsSection::default());
        let same = |g| {
            let mut d = cur.clone();
            d.generation = g;
            d.nfs = None;
            d
        };
        let p = plan(&cur, same(0), Generation::Checked).unwrap();
        assert_eq!(p.desired.generation, 6, "0 means next");
        assert_eq!(p.desired.nfs, cur.nfs, "NFS settings kept");
        assert!(
            p.steps.is_empty() && !p.noop(&cur),
            "a new generation is still applied"
        );
        let p = plan(&cur, same(5), Generation::Checked).unwrap();
        assert!(p.noop(&cur), "the same state again changes nothing");
        assert_eq!(p.current_generation, 5);
        let p = plan(&cur, same(2), Generation::AsGiven).unwrap();
        assert_eq!(p.desired.generation, 2, "the initial state is taken as is");
        let p = plan(&cur, same(0), Generation::AsGiven).unwrap();
        assert_eq!(p.desired.generation, 0);
    }
}
