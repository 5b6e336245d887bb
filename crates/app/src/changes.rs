//! Change requests: file, edit, submit, withdraw, request changes, sign off, revoke, expire.
//! Every transition goes through [`changegate_domain::change::apply`].

use crate::identity::tokens::Principal;
use crate::registry::{may_see_org, review_due, system_by_code};
use crate::{App, AppError, AppResult, WriteTx, event, json_col, to_json};
use changegate_api as wire;
use changegate_domain::change::{
    Actor, CheckResult, Command, Conclusion, Condition, ItemResult, SignOff, apply,
    check_justification, check_text, may_file,
};
use changegate_domain::gate::{IncidentStatus, SystemStatus};
use changegate_domain::{
    ArtifactDigest, ChangeKind, CommitId, CrState, EnvName, SecurityLevel, Subject, TreeId,
};

use changegate_store::entity::{change_request as cr, cr_subject, system, user};
use changegate_store::sea_orm::ConnectionTrait;
use changegate_store::{changes, identity, incidents, registry};
use std::collections::{BTreeSet, HashMap};
use tracing::instrument;

const MAX_SUBJECTS: usize = 100;
const MAX_COMPONENTS: usize = 200;

/// Parses wire subjects, naming the offending field.
pub fn parse_subjects(
    subjects: &[wire::WireSubject],
    errors: &mut Vec<(String, String)>,
) -> Vec<Subject> {
    if subjects.len() > MAX_SUBJECTS {
        errors.push((
            "subjects".into(),
            format!("at most {MAX_SUBJECTS} subjects"),
        ));
        return vec![];
    }
    let mut out = vec![];
    for (i, s) in subjects.iter().enumerate() {
        match s {
            wire::WireSubject::GitCommit { commit, tree } => {
                let c = CommitId::parse(commit)
                    .map_err(|e| errors.push((format!("subjects[{i}].commit"), e.to_string())));
                let t = TreeId::parse(tree)
                    .map_err(|e| errors.push((format!("subjects[{i}].tree"), e.to_string())));
                if let (Ok(commit), Ok(tree)) = (c, t) {
                    out.push(Subject::GitCommit { commit, tree });
                }
            }
            wire::WireSubject::Artifact { digest } => match ArtifactDigest::parse(digest) {
                Ok(digest) => out.push(Subject::Artifact { digest }),
                Err(e) => errors.push((format!("subjects[{i}].digest"), e.to_string())),
            },
        }
    }
    let unique: BTreeSet<String> = out.iter().map(to_json).collect();
    if unique.len() != out.len() {
        errors.push(("subjects".into(), "a subject is listed twice".into()));
    }
    out
}

fn parse_envs(
    envs: &[String],
    system_envs: &[String],
    errors: &mut Vec<(String, String)>,
) -> Vec<String> {
    if envs.is_empty() {
        return system_envs.to_vec();
    }
    let mut out: Vec<String> = vec![];
    for (i, e) in envs.iter().enumerate() {
        match EnvName::parse(e) {
            Ok(e) if !system_envs.contains(&e.to_string()) => errors.push((
                format!("environments[{i}]"),
                format!(
                    "the system has no environment {:?} (it has {})",
                    e.as_str(),
                    system_envs.join(", ")
                ),
            )),
            Ok(e) if out.contains(&e.to_string()) => {
                errors.push((format!("environments[{i}]"), "listed twice".into()))
            }
            Ok(e) => out.push(e.to_string()),
            Err(err) => errors.push((format!("environments[{i}]"), err.to_string())),
        }
    }
    out
}

fn check_components(cs: &[wire::ComponentChange], errors: &mut Vec<(String, String)>) {
    if cs.len() > MAX_COMPONENTS {
        errors.push((
            "components".into(),
            format!("at most {MAX_COMPONENTS} components"),
        ));
    }
    for (i, c) in cs.iter().enumerate() {
        for (f, s, req) in [
            ("name", &c.name, true),
            ("before", &c.before, false),
            ("after", &c.after, false),
        ] {
            if let Err(e) = check_text(&format!("components[{i}].{f}"), s, 500, req) {
                errors.push((format!("components[{i}].{f}"), e.to_string()));
            }
        }
    }
}

/// The data of a change request's notification.
fn notice(row: &cr::Model, sys: &system::Model, who: Option<&Principal>) -> serde_json::Value {
    serde_json::json!({
        "id": row.id,
        "system": sys.code,
        "system_name": sys.name,
        "level": sys.level,
        "kind": row.kind,
        "title": row.title,
        "state": row.state,
        "actor": who.map_or("changegate".to_owned(), |p| p.display_name.clone()),
        "valid_until": row.valid_until,
        "emergency_until": row.emergency_until,
        "justification": row.description,
    })
}

fn check_git_facts(g: &wire::GitFacts, subjects: &[Subject], errors: &mut Vec<(String, String)>) {
    for (f, v) in [("git.base", &g.base), ("git.head", &g.head)] {
        if let Err(e) = CommitId::parse(v) {
            errors.push((f.into(), e.to_string()));
        }
    }
    if let Err(e) = TreeId::parse(&g.head_tree) {
        errors.push(("git.head_tree".into(), e.to_string()));
    }
    if g.commits.len() > 500 || g.files.len() > 2000 {
        errors.push(("git".into(), "at most 500 commits and 2000 files".into()));
    }
    let texts = g
        .commits
        .iter()
        .map(|c| (&c.summary, 1000))
        .chain(g.files.iter().map(|f| (&f.path, 4096)));
    if texts
        .clone()
        .any(|(t, max)| t.chars().count() > max || t.contains('\0'))
        || g.range.chars().count() > 300
    {
        errors.push((
            "git".into(),
            "a commit summary, path or range is too long or holds a NUL".into(),
        ));
    }
    let covered = subjects.iter().any(|s| matches!(s, Subject::GitCommit { commit, tree } if commit.as_str() == g.head.to_ascii_lowercase() && tree.as_str() == g.head_tree.to_ascii_lowercase()));
    if !covered {
        errors.push((
            "git.head".into(),
            "the head commit and its tree must be one of the subjects".into(),
        ));
    }
}

fn push_text(errors: &mut Vec<(String, String)>, field: &str, s: &str, max: usize, required: bool) {
    if let Err(e) = check_text(field, s, max, required) {
        errors.push((
            field.to_owned(),
            e.to_string()
                .trim_start_matches(&format!("{field}: "))
                .to_owned(),
        ));
    }
}

fn wire_subject(s: &cr_subject::Model) -> wire::WireSubject {
    match (&s.digest, &s.commit_id, &s.tree_id) {
        (Some(d), _, _) => wire::WireSubject::Artifact { digest: d.clone() },
        (None, c, t) => wire::WireSubject::GitCommit {
            commit: c.clone().unwrap_or_default(),
            tree: t.clone().unwrap_or_default(),
        },
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("stored {what} is invalid: {e}"))
}

/// The domain's view of a stored change request.
pub async fn domain_view(
    db: &impl ConnectionTrait,
    row: &cr::Model,
    sys: &system::Model,
) -> AppResult<changegate_domain::ChangeRequest> {
    let signoffs = changegate_store::changes::round_sign_offs(db, row.id, row.round).await?;
    Ok(changegate_domain::ChangeRequest {
        state: *row.state,
        kind: *row.kind,
        level: SecurityLevel::new(i64::from(sys.level)).map_err(|e| corrupt("level", e))?,
        owner_org: sys.owner_org_id,
        filed_by: row.filed_by,
        editors: row.editors.0.iter().copied().collect(),
        round: u32::try_from(row.round).unwrap_or(0),
        signoffs,
        approved_at: row.approved_at,
        valid_until: row.valid_until,
        emergency_until: row.emergency_until,
        major_change: row.major_change.0.iter().copied().collect(),
        external_assessment: changegate_store::assessments::assessment_of(db, row.id)
            .await?
            .map(|a| a.assessed_on),
        population_db: sys.population_db,
    })
}

fn parse_sign_off(n: &wire::NewSignOff, today: chrono::NaiveDate) -> AppResult<SignOff> {
    let mut errors = vec![];
    let conclusion = Conclusion::parse(&n.conclusion)
        .map_err(|e| errors.push(("conclusion".to_owned(), e.to_string())))
        .ok();
    let mut checklist = vec![];
    for (i, a) in n.checklist.iter().enumerate() {
        match CheckResult::parse(&a.result) {
            Ok(result) => checklist.push(ItemResult {
                item: a.item.clone(),
                result,
                note: a.note.clone(),
            }),
            Err(e) => errors.push((format!("checklist[{i}].result"), e.to_string())),
        }
    }
    let findings = crate::remediation::parse_findings(&n.findings, &mut errors);
    let conditions = crate::remediation::parse_conditions(&n.conditions, Some(today), &mut errors);
    match (conclusion, errors.is_empty()) {
        (Some(conclusion), true) => Ok(SignOff {
            conclusion,
            checklist,
            findings,
            conditions,
        }),
        _ => Err(AppError::Invalid(errors)),
    }
}

/// A condition as recorded with its sign-off: severity and due date resolved (the pack's default
/// due date counted from the day of the sign-off).
fn resolved(
    c: &Condition,
    pack: &changegate_domain::PolicyPack,
    today: chrono::NaiveDate,
) -> wire::WireCondition {
    wire::WireCondition::Full(wire::ConditionSpec {
        text: c.text.clone(),
        severity: Some(c.severity.as_str().to_owned()),
        due: Some(
            c.due
                .unwrap_or_else(|| {
                    changegate_domain::remediation::default_due(pack, c.severity, today)
                })
                .to_string(),
        ),
    })
}

/// The content of a change as PA05 looked at it, for the comparison after it was sent back.
fn content_snapshot(v: &wire::ChangeRequest) -> serde_json::Value {
    serde_json::json!({ "title": v.title, "description": v.description,
        "environments": v.environments, "subjects": v.subjects, "components": v.components })
}

/// What changed between two content snapshots, field by field.
fn compare(before: &serde_json::Value, after: &serde_json::Value) -> Vec<wire::FieldChange> {
    let mut out = vec![];
    for field in [
        "title",
        "description",
        "environments",
        "components",
        "subjects",
    ] {
        let (b, a) = (&before[field], &after[field]);
        if b == a {
            continue;
        }
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) => match (o.get("digest"), o.get("commit"), o.get("name"))
            {
                (Some(d), _, _) => d.as_str().unwrap_or_default().to_owned(),
                (_, Some(c), _) => format!(
                    "{} (tree {})",
                    c.as_str().unwrap_or_default(),
                    o.get("tree").and_then(|t| t.as_str()).unwrap_or_default()
                ),
                (_, _, Some(n)) => format!(
                    "{}: {} → {}",
                    n.as_str().unwrap_or_default(),
                    o.get("before").and_then(|t| t.as_str()).unwrap_or_default(),
                    o.get("after").and_then(|t| t.as_str()).unwrap_or_default()
                ),
                _ => v.to_string(),
            },
            other => other.to_string(),
        };
        let list = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().map(text).collect())
                .unwrap_or_default()
        };
        let (bl, al) = (list(b), list(a));
        let joined = |v: &serde_json::Value, l: &[String]| {
            if v.is_array() { l.join("\n") } else { text(v) }
        };
        out.push(wire::FieldChange {
            field: field.to_owned(),
            before: joined(b, &bl),
            after: joined(a, &al),
            added: al.iter().filter(|x| !bl.contains(x)).cloned().collect(),
            removed: bl.iter().filter(|x| !al.contains(x)).cloned().collect(),
        });
    }
    out
}

impl App {
    async fn load_cr(
        &self,
        db: &impl ConnectionTrait,
        who: &Principal,
        id: i64,
    ) -> AppResult<(cr::Model, system::Model)> {
        let (row, sys) = changegate_store::changes::with_system(db, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("change request {id}")))?;
        if !may_see_org(who, sys.owner_org_id) {
            return Err(AppError::NotFound(format!("change request {id}")));
        }
        Ok((row, sys))
    }

    /// The wire view of a change request, with its subjects, sign-offs and the checklist.
    pub async fn change_view(
        &self,
        db: &impl ConnectionTrait,
        row: &cr::Model,
        sys: &system::Model,
    ) -> AppResult<wire::ChangeRequest> {
        let subjects = changes::subjects(db, row.id).await?;
        let signs = changes::sign_offs(db, [row.id]).await?;
        let mut ids: Vec<i64> = signs.iter().map(|s| s.reviewer_id).collect();
        ids.push(row.filed_by);
        let users: HashMap<i64, user::Model> = identity::users_by_ids(db, ids).await?;
        let name = |id: i64| {
            users
                .get(&id)
                .map(|u| (u.username.clone(), u.display_name.clone()))
                .unwrap_or_default()
        };
        let level = SecurityLevel::new(i64::from(sys.level)).map_err(|e| corrupt("level", e))?;
        let mut view = wire::ChangeRequest {
            id: row.id,
            system: sys.code.clone(),
            kind: row.kind.as_str().to_owned(),
            title: row.title.clone(),
            description: row.description.clone(),
            state: row.state.as_str().to_owned(),
            environments: row.environments.0.clone(),
            subjects: subjects.iter().map(wire_subject).collect(),
            components: row.components.0.clone(),
            filed_by: name(row.filed_by).0,
            round: row.round,
            quorum: self.pack.level(level).quorum,
            approved_at: row.approved_at,
            valid_until: row.valid_until,
            emergency_until: row.emergency_until,
            git: row.git_facts.as_ref().map(|g| g.0.clone()),
            remediates_incident: row.remediates_incident,
            created_at: row.created_at,
            updated_at: row.updated_at,
            checklist: self
                .pack
                .checklist
                .iter()
                .map(|i| wire::ChecklistItem {
                    item: i.id.clone(),
                    group: i.group.clone(),
                    vi: i.vi.clone(),
                    en: i.en.clone(),
                })
                .collect(),
            sign_offs: signs
                .iter()
                .map(|s| {
                    let (reviewer, reviewer_name) = name(s.reviewer_id);
                    Ok(wire::SignOffView {
                        reviewer,
                        reviewer_name,
                        round: s.round,
                        conclusion: s.conclusion.to_string(),
                        checklist: s.checklist.0.clone(),
                        findings: s.findings.0.clone(),
                        conditions: s.conditions.0.clone(),
                        at: s.created_at,
                        pack: Some(wire::PackRef {
                            id: s.pack_id.clone(),
                            version: u32::try_from(s.pack_version).unwrap_or(0),
                        }),
                    })
                })
                .collect::<AppResult<_>>()?,
            sent_back: None,
            changes_since_review: vec![],
            major_change: row
                .major_change
                .0
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            external_assessment: self.assessment_view(db, row.id).await?,
            record_number: row.record_number,
            record_year: row.record_year,
        };
        if row.round > 0 {
            self.add_sent_back(db, row, &mut view).await?;
        }
        Ok(view)
    }

    /// After PA05 sent a change back: the latest such round's note and findings, and, while the
    /// change is a draft or awaits its evaluation again, what the owner changed since.
    async fn add_sent_back(
        &self,
        db: &impl ConnectionTrait,
        row: &cr::Model,
        view: &mut wire::ChangeRequest,
    ) -> AppResult<()> {
        let Some(ev) = changegate_store::audit::latest_about(
            db,
            "change_request",
            &row.id.to_string(),
            "change_request.request_changes",
        )
        .await?
        else {
            return Ok(());
        };
        let after: serde_json::Value =
            json_col("audit event", ev.after.as_deref().unwrap_or("{}"))?;
        let round = after["round"].as_i64().unwrap_or(i64::from(row.round)) as i32 - 1;
        let reviewer = match ev.actor_id {
            Some(id) => identity::user_by_id(db, id).await?,
            None => None,
        };
        let findings = changegate_store::remediation::round_findings(db, row.id, round).await?;
        view.sent_back = Some(wire::SentBack {
            round,
            reviewer: reviewer
                .as_ref()
                .map_or(ev.actor.clone(), |u| u.username.clone()),
            reviewer_name: reviewer.map(|u| u.display_name).unwrap_or_default(),
            note: after["note"].as_str().unwrap_or_default().to_owned(),
            findings: self.remediation_views(db, findings).await?,
            at: chrono::DateTime::parse_from_rfc3339(&ev.at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_default(),
        });
        if matches!(*row.state, CrState::Draft | CrState::Submitted)
            && after.get("content").is_some()
        {
            view.changes_since_review = compare(&after["content"], &content_snapshot(view));
        }
        Ok(())
    }

    /// Files a change request (owner of the system's organisation). It starts as a draft.
    #[instrument(skip_all, fields(system = ?n.system), err(level = "info"))]
    pub async fn file_change(
        &self,
        who: &Principal,
        n: wire::NewChangeRequest,
    ) -> AppResult<wire::ChangeRequest> {
        let sys = system_by_code(&self.db, &n.system).await.map_err(|_| {
            AppError::invalid("system", format!("no system has the code {:?}", n.system))
        })?;
        if !may_see_org(who, sys.owner_org_id) {
            return Err(AppError::invalid(
                "system",
                format!("no system has the code {:?}", n.system),
            ));
        }
        may_file(&who.actor(), sys.owner_org_id)?;
        if *sys.status == SystemStatus::Retired {
            return Err(crate::systems::retired(
                &sys.code,
                "given new change requests",
            ));
        }
        let mut errors = vec![];
        let kind = ChangeKind::parse(&n.kind)
            .map_err(|e| errors.push(("kind".to_owned(), e.to_string())))
            .ok();
        push_text(&mut errors, "title", &n.title, 200, true);
        push_text(&mut errors, "description", &n.description, 20_000, false);
        let sys_envs: Vec<String> = sys.environments.0.clone();
        let envs = parse_envs(&n.environments, &sys_envs, &mut errors);
        let subjects = parse_subjects(&n.subjects, &mut errors);
        check_components(&n.components, &mut errors);
        let major = crate::assessments::parse_major(&n.major_change, &mut errors);
        if let Some(g) = &n.git {
            check_git_facts(g, &subjects, &mut errors);
        }
        if let Some(id) = n.remediates_incident {
            let open = incidents::incident(&self.db, id)
                .await?
                .is_some_and(|i| i.system_id == sys.id && *i.status == IncidentStatus::Open);
            if kind != Some(ChangeKind::Emergency) {
                errors.push((
                    "remediates_incident".into(),
                    "only an emergency change remediates an incident".into(),
                ));
            } else if !open {
                errors.push((
                    "remediates_incident".into(),
                    format!("incident {id} is not an open incident of {}", sys.code),
                ));
            }
        }
        if let Some(Err(changegate_domain::Refusal::Invalid { field, message })) =
            kind.map(|k| check_justification(k, &n.description))
        {
            errors.push((field, message));
        }
        let (Some(kind), true) = (kind, errors.is_empty()) else {
            return Err(AppError::Invalid(errors));
        };
        let tx = self.begin().await?;
        let row = changes::create(
            &tx.txn,
            changes::NewChange {
                system_id: sys.id,
                kind,
                title: n.title,
                description: n.description,
                environments: envs,
                components: n.components,
                git_facts: n.git,
                remediates_incident: n.remediates_incident,
                major_change: major,
                filed_by: who.user_id,
                editors: vec![who.user_id],
                at: tx.at(),
            },
        )
        .await?;
        changes::replace_subjects(&tx.txn, row.id, sys.id, &subjects).await?;
        let view = self.change_view(&tx.txn, &row, &sys).await?;
        let after = serde_json::json!({ "system": sys.code, "kind": view.kind, "title": view.title, "description": view.description,
            "environments": view.environments, "subjects": view.subjects, "components": view.components, "state": view.state,
            "major_change": view.major_change });
        tx.audit(event(
            Some(who),
            "change_request.file",
            "change_request",
            row.id,
            Some(sys.id),
            None,
            Some(after),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Edits a draft (owner of the system's organisation). The editor can no longer sign it off.
    #[instrument(skip_all, fields(id), err(level = "info"))]
    pub async fn edit_change(
        &self,
        who: &Principal,
        id: i64,
        e: wire::EditChangeRequest,
    ) -> AppResult<wire::ChangeRequest> {
        let tx = self.begin().await?;
        let (row, sys) = self.load_cr(&tx.txn, who, id).await?;
        let current = domain_view(&tx.txn, &row, &sys).await?;
        let (next, _) = apply(&current, &who.actor(), &Command::Edit, &self.pack, tx.at())?;
        let mut errors = vec![];
        if let Some(t) = &e.title {
            push_text(&mut errors, "title", t, 200, true);
        }
        if let Some(d) = &e.description {
            push_text(&mut errors, "description", d, 20_000, false);
            if let Some(Err(changegate_domain::Refusal::Invalid { field, message })) =
                Some(check_justification(*row.kind, d))
            {
                errors.push((field, message));
            }
        }
        let sys_envs: Vec<String> = sys.environments.0.clone();
        let envs = e
            .environments
            .as_ref()
            .map(|v| parse_envs(v, &sys_envs, &mut errors));
        let subjects = e.subjects.as_ref().map(|v| parse_subjects(v, &mut errors));
        if let Some(c) = &e.components {
            check_components(c, &mut errors);
        }
        let major = e
            .major_change
            .as_ref()
            .map(|m| crate::assessments::parse_major(m, &mut errors));
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let before = self.change_view(&tx.txn, &row, &sys).await?;
        let row = changes::edit(
            &tx.txn,
            &row,
            changes::ChangeEdit {
                title: e.title,
                description: e.description,
                environments: envs,
                components: e.components,
                major_change: major,
                editors: next.editors.iter().copied().collect(),
            },
            tx.at(),
        )
        .await?;
        if let Some(s) = subjects {
            changes::replace_subjects(&tx.txn, id, sys.id, &s).await?;
        }
        let after = self.change_view(&tx.txn, &row, &sys).await?;
        let snap = |v: &wire::ChangeRequest| {
            serde_json::json!({ "title": v.title, "description": v.description,
            "environments": v.environments, "subjects": v.subjects, "components": v.components,
            "major_change": v.major_change })
        };
        tx.audit(event(
            Some(who),
            "change_request.edit",
            "change_request",
            id,
            Some(sys.id),
            Some(snap(&before)),
            Some(snap(&after)),
        ))
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Applies a state command (submit, withdraw, request changes, revoke, expire).
    #[instrument(skip_all, fields(id, command = cmd.name()), err(level = "info"))]
    pub async fn act_on_change(
        &self,
        who: Option<&Principal>,
        id: i64,
        cmd: Command,
    ) -> AppResult<wire::ChangeRequest> {
        let tx = self.begin().await?;
        let viewer = who.cloned().unwrap_or_else(Principal::operator);
        let (row, sys) = self.load_cr(&tx.txn, &viewer, id).await?;
        // A locked account's verdicts wait for the lock to lift, as its sign-offs do.
        if let (Command::RequestChanges { .. }, Some(p)) = (&cmd, who)
            && p.user_id > 0
            && let Some(u) = identity::user_by_id(&tx.txn, p.user_id).await?
            && let Some(until) = u.locked_until.filter(|t| *t > tx.at())
        {
            return Err(AppError::Locked(until));
        }
        let current = domain_view(&tx.txn, &row, &sys).await?;
        let actor = who.map_or(Actor::System, Principal::actor);
        let (next, _effect) = apply(&current, &actor, &cmd, &self.pack, tx.at())?;
        let row = self.save_state(&tx.txn, row, &next, tx.at()).await?;
        let note = match &cmd {
            Command::RequestChanges { note, .. } => Some(note.clone()),
            Command::Revoke { reason } => Some(reason.clone()),
            _ => None,
        };
        let mut after = serde_json::json!({ "state": next.state.as_str(), "round": next.round, "valid_until": next.valid_until });
        if let Some(n) = note {
            after["note"] = serde_json::Value::String(n);
        }
        if let Command::RequestChanges { findings, .. } = &cmd
            && let Some(p) = who
        {
            // The content PA05 looked at, to show the owner's changes at resubmission.
            after["content"] = content_snapshot(&self.change_view(&tx.txn, &row, &sys).await?);
            after["findings"] = serde_json::to_value(findings).unwrap_or_default();
            let items = findings.iter().map(Into::into).collect();
            let round = i32::try_from(current.round).unwrap_or(i32::MAX);
            self.raise_items(&tx, p, &sys, id, round, items).await?;
        }
        tx.audit(event(
            who,
            &format!("change_request.{}", cmd.name()),
            "change_request",
            id,
            Some(sys.id),
            Some(serde_json::json!({ "state": current.state.as_str() })),
            Some(after),
        ))
        .await?;
        if matches!(cmd, Command::Submit) {
            tx.notify("change_request.submitted", notice(&row, &sys, who))
                .await?;
        }
        if next.emergency_until != current.emergency_until {
            tx.notify("change_request.break_glass", notice(&row, &sys, who))
                .await?;
            // Break-glass: the change may deploy before its evaluation; PA05 must evaluate it
            // retroactively before the window closes.
            tx.audit(event(
                who,
                "change_request.break_glass",
                "change_request",
                id,
                Some(sys.id),
                None,
                Some(serde_json::json!({ "emergency_until": next.emergency_until, "justification": row.description })),
            ))
            .await?;
        }
        let view = self.change_view(&tx.txn, &row, &sys).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Sends a submitted change back to its owner with a note and findings (reviewer); each
    /// finding becomes a remediation item.
    pub async fn request_changes(
        &self,
        who: &Principal,
        id: i64,
        n: wire::Note,
    ) -> AppResult<wire::ChangeRequest> {
        let mut errors = vec![];
        let findings = crate::remediation::parse_findings(&n.findings, &mut errors);
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let cmd = Command::RequestChanges {
            note: n.note,
            findings,
        };
        self.act_on_change(Some(who), id, cmd).await
    }

    async fn save_state(
        &self,
        db: &impl ConnectionTrait,
        row: cr::Model,
        next: &changegate_domain::ChangeRequest,
        at: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<cr::Model> {
        Ok(changes::save_state(
            db,
            row,
            changes::StateUpdate {
                state: next.state,
                round: i32::try_from(next.round).unwrap_or(i32::MAX),
                editors: next.editors.iter().copied().collect(),
                approved_at: next.approved_at,
                valid_until: next.valid_until,
                emergency_until: next.emergency_until,
            },
            at,
        )
        .await?)
    }

    /// Checks, without writing, that `who` could sign off change request `id` with `n` now: the
    /// answers, the state and separation of duties. [`App::sign_off`] checks all of it again in
    /// its transaction; this lets the web UI refuse a form before it uses up a one-time code.
    pub async fn check_sign_off(
        &self,
        who: &Principal,
        id: i64,
        n: &wire::NewSignOff,
    ) -> AppResult<()> {
        let s = parse_sign_off(n, self.today())?;
        let (row, sys) = self.load_cr(&self.db, who, id).await?;
        let current = domain_view(&self.db, &row, &sys).await?;
        apply(
            &current,
            &who.actor(),
            &Command::SignOff(s),
            &self.pack,
            crate::now(),
        )?;
        Ok(())
    }

    /// Records a reviewer's evaluation and sign-off in a transaction of its own, without asking
    /// a second factor: for the demo data only. Every person's sign-off goes through
    /// [`App::sign_off_with_code`] (API) or [`App::sign_off_with_second_factor`] (web UI), which
    /// record it in the transaction that uses up the code.
    pub(crate) async fn sign_off(
        &self,
        who: &Principal,
        id: i64,
        n: wire::NewSignOff,
    ) -> AppResult<wire::ChangeRequest> {
        let tx = self.begin().await?;
        let view = self.sign_off_in(&tx, who, id, n).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Records a reviewer's evaluation and sign-off in `tx` (the caller commits).
    #[instrument(skip_all, fields(id), err(level = "info"))]
    pub(crate) async fn sign_off_in(
        &self,
        tx: &WriteTx<'_>,
        who: &Principal,
        id: i64,
        n: wire::NewSignOff,
    ) -> AppResult<wire::ChangeRequest> {
        let today = tx.at().with_timezone(&self.tz).date_naive();
        let s = parse_sign_off(&n, today)?;
        let (row, sys) = self.load_cr(&tx.txn, who, id).await?;
        let current = domain_view(&tx.txn, &row, &sys).await?;
        let (next, _) = apply(
            &current,
            &who.actor(),
            &Command::SignOff(s.clone()),
            &self.pack,
            tx.at(),
        )?;
        let conditions: Vec<wire::WireCondition> = s
            .conditions
            .iter()
            .map(|c| resolved(c, &self.pack, today))
            .collect();
        changes::record_sign_off(
            &tx.txn,
            changes::NewSignOff {
                change_request_id: id,
                round: row.round,
                reviewer_id: who.user_id,
                conclusion: s.conclusion,
                checklist: n.checklist.clone(),
                findings: n.findings.clone(),
                conditions: conditions.clone(),
                at: tx.at(),
                pack_id: self.pack.meta.id.clone(),
                pack_version: i32::try_from(self.pack.meta.version).unwrap_or(i32::MAX),
            },
        )
        .await?;
        let row = self.save_state(&tx.txn, row, &next, tx.at()).await?;
        // The evaluation concluded: its record (biên bản) gets the year's next number.
        let row = if matches!(next.state, CrState::Approved | CrState::Rejected) {
            self.number_record(tx, row).await?
        } else {
            row
        };
        let after = serde_json::json!({ "conclusion": n.conclusion, "checklist": n.checklist, "findings": n.findings,
            "conditions": conditions, "round": row.round, "state": next.state.as_str(), "valid_until": next.valid_until,
            "pack": self.pack_ref(), "record_number": row.record_number, "record_year": row.record_year });
        tx.audit(event(
            Some(who),
            "change_request.sign_off",
            "change_request",
            id,
            Some(sys.id),
            Some(serde_json::json!({ "state": current.state.as_str() })),
            Some(after),
        ))
        .await?;
        self.raise_on_sign_off(tx, who, &sys, &row, &s, next.state)
            .await?;
        match (current.kind, next.state) {
            (ChangeKind::ReReview, CrState::Approved) => {
                self.record_evaluation(tx, who, &sys).await?
            }
            (ChangeKind::ReReview, CrState::Rejected) => {
                self.set_system_status(tx, who, &sys, SystemStatus::Suspended)
                    .await?
            }
            // A change that passes its evaluation lifts a suspension by a failed re-review.
            (_, CrState::Approved) if *sys.status == SystemStatus::Suspended => {
                self.set_system_status(tx, who, &sys, SystemStatus::Active)
                    .await?
            }
            _ => {}
        }
        let outcome = match next.state {
            CrState::Approved => "change_request.approved",
            CrState::Rejected => "change_request.rejected",
            _ => "change_request.signed_off",
        };
        tx.notify(outcome, notice(&row, &sys, Some(who))).await?;
        let view = self.change_view(&tx.txn, &row, &sys).await?;
        Ok(view)
    }

    /// Items raised by a sign-off: the findings of a failed evaluation; when the change is
    /// approved, the conditions of every passing sign-off of the round.
    #[allow(clippy::too_many_arguments)]
    async fn raise_on_sign_off(
        &self,
        tx: &WriteTx<'_>,
        who: &Principal,
        sys: &system::Model,
        row: &cr::Model,
        s: &SignOff,
        state: CrState,
    ) -> AppResult<()> {
        match state {
            CrState::Rejected => {
                let items = s.findings.iter().map(Into::into).collect();
                self.raise_items(tx, who, sys, row.id, row.round, items)
                    .await
            }
            CrState::Approved => {
                let rows = changes::round_sign_off_rows(&tx.txn, row.id, row.round).await?;
                let mut conditions: Vec<Condition> = vec![];
                for r in rows {
                    let stored = r.conditions.0;
                    let mut errors = vec![];
                    // Recorded with their due dates resolved; a date that was valid at its
                    // sign-off stays as it was.
                    let parsed = crate::remediation::parse_conditions(&stored, None, &mut errors);
                    if !errors.is_empty() {
                        return Err(corrupt("conditions", format!("{errors:?}")));
                    }
                    conditions.extend(parsed);
                }
                let items = conditions.iter().map(Into::into).collect();
                self.raise_items(tx, who, sys, row.id, row.round, items)
                    .await
            }
            _ => Ok(()),
        }
    }

    async fn set_system_status(
        &self,
        tx: &WriteTx<'_>,
        who: &Principal,
        sys: &system::Model,
        status: SystemStatus,
    ) -> AppResult<()> {
        if *sys.status == SystemStatus::Retired {
            // A retired system stays retired whatever its last evaluations conclude.
            return Ok(());
        }
        registry::set_system_status(&tx.txn, sys.clone(), status, tx.at()).await?;
        let action = if status == SystemStatus::Suspended {
            "system.suspended"
        } else {
            "system.reinstated"
        };
        tx.audit(event(
            Some(who),
            action,
            "system",
            &sys.code,
            Some(sys.id),
            Some(serde_json::json!({ "status": sys.status })),
            Some(serde_json::json!({ "status": status })),
        ))
        .await?;
        Ok(())
    }

    /// A passing periodic re-review is the system's latest passing evaluation: it sets
    /// `last_evaluated_on` and schedules the next re-review from that date (and lifts a
    /// suspension).
    async fn record_evaluation(
        &self,
        tx: &WriteTx<'_>,
        who: &Principal,
        sys: &system::Model,
    ) -> AppResult<()> {
        let level = SecurityLevel::new(i64::from(sys.level)).map_err(|e| corrupt("level", e))?;
        let on = tx.at().date_naive();
        let due = review_due(self.pack.level(level).re_review_months, on);
        let before = serde_json::json!({ "last_evaluated_on": sys.last_evaluated_on, "next_review_due": sys.next_review_due });
        let after = serde_json::json!({ "last_evaluated_on": on, "next_review_due": due });
        registry::record_evaluation(&tx.txn, sys, on, due, tx.at()).await?;
        tx.audit(event(
            Some(who),
            "system.evaluated",
            "system",
            &sys.code,
            Some(sys.id),
            Some(before),
            Some(after),
        ))
        .await?;
        Ok(())
    }

    /// A change request, if the principal may see it.
    pub async fn get_change(&self, who: &Principal, id: i64) -> AppResult<wire::ChangeRequest> {
        let (row, sys) = self.load_cr(&self.db, who, id).await?;
        self.change_view(&self.db, &row, &sys).await
    }

    /// One page of the change requests visible to the principal, newest first, filtered.
    pub async fn list_changes(
        &self,
        who: &Principal,
        f: &ChangeFilter,
    ) -> AppResult<wire::ChangeRequestList> {
        let mut errors: Vec<(String, String)> = vec![];
        let owner_org = (!who.role.sees_every_organisation()).then_some(who.org_id);
        let syss: HashMap<i64, system::Model> = registry::systems(&self.db, owner_org)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let mut ids: Option<Vec<i64>> =
            (!who.role.sees_every_organisation()).then(|| syss.keys().copied().collect());
        if let Some(code) = f.system.as_deref().filter(|c| !c.is_empty()) {
            // Another organisation's system answers as one that does not exist.
            match syss.values().find(|s| s.code == code) {
                Some(s) => ids = Some(vec![s.id]),
                None => errors.push(("system".into(), format!("no system has the code {code:?}"))),
            }
        }
        if let Some(code) = f.org.as_deref().filter(|c| !c.is_empty()) {
            match crate::registry::org_by_code(&self.db, code).await {
                Ok(o) => {
                    let of_org: Vec<i64> = syss
                        .values()
                        .filter(|s| s.owner_org_id == o.id)
                        .map(|s| s.id)
                        .collect();
                    ids = Some(match ids {
                        Some(ids) => ids.into_iter().filter(|i| of_org.contains(i)).collect(),
                        None => of_org,
                    });
                }
                Err(AppError::NotFound(_)) => errors.push((
                    "org".into(),
                    format!("no organisation has the code {code:?}"),
                )),
                Err(e) => return Err(e),
            }
        }
        let mut q = changes::ChangeFilter {
            systems: ids,
            ..changes::ChangeFilter::default()
        };
        if let Some(st) = f.state.as_deref().filter(|s| !s.is_empty()) {
            match CrState::parse(st) {
                Ok(st) => q.state = Some(st),
                Err(e) => errors.push(("state".into(), e.to_string())),
            }
        }
        if let Some(k) = f.kind.as_deref().filter(|s| !s.is_empty()) {
            match ChangeKind::parse(k) {
                Ok(k) => q.kind = Some(k),
                Err(e) => errors.push(("kind".into(), e.to_string())),
            }
        }
        // Dates are days of the server's time zone, both ends included.
        let (from, to) =
            crate::lists::day_range(self.tz, f.from.as_deref(), f.to.as_deref(), &mut errors);
        q.created_from = from;
        q.created_before = to;
        q.words = crate::lists::search_terms(f.q.as_deref(), &mut errors);
        let (page, per_page) = crate::lists::paging(f.page, f.limit, PER_PAGE, &mut errors);
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let changes::ChangePage { items: rows, total } =
            changes::page(&self.db, &q, page, per_page).await?;
        Ok(wire::ChangeRequestList {
            items: rows
                .into_iter()
                .map(|r| wire::ChangeRequestSummary {
                    id: r.id,
                    system: syss
                        .get(&r.system_id)
                        .map(|s| s.code.clone())
                        .unwrap_or_default(),
                    kind: r.kind.as_str().to_owned(),
                    title: r.title,
                    state: r.state.as_str().to_owned(),
                    created_at: r.created_at,
                })
                .collect(),
            page,
            per_page,
            total,
        })
    }
}

/// Change requests per page of the list, unless `limit` says otherwise.
pub const PER_PAGE: u64 = 50;

/// Filters of the list of change requests (all optional; a bad one is refused naming its field).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ChangeFilter {
    /// System code.
    pub system: Option<String>,
    /// Owner organisation code.
    pub org: Option<String>,
    /// State.
    pub state: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Filed on or after this day (YYYY-MM-DD, server time zone).
    pub from: Option<String>,
    /// Filed on or before this day.
    pub to: Option<String>,
    /// Words of the title or description, with or without diacritics.
    pub q: Option<String>,
    /// Page, from 1.
    pub page: Option<u64>,
    /// Items per page, 1-500 (default 50).
    pub limit: Option<u64>,
}
