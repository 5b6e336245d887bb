//! Change requests: file, edit, submit, withdraw, request changes, sign off, revoke, expire.
//! Every transition goes through [`changegate_domain::change::apply`].

use crate::auth::Principal;
use crate::registry::{may_see_org, review_due, system_by_code};
use crate::{App, AppError, AppResult, WriteTx, event, json_col, to_json};
use changegate_api as wire;
use changegate_domain::change::{
    Actor, CheckResult, Command, Conclusion, Finding, ItemResult, Severity, SignOff, SignOffRecord,
    apply, check_justification, check_text, may_file,
};
use changegate_domain::{
    ArtifactDigest, ChangeKind, CommitId, CrState, EnvName, SecurityLevel, Subject, TreeId,
};
use changegate_store::entity::{
    change_request as cr, cr_subject, incident, sign_off, system, user,
};
use changegate_store::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
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

fn subject_row(cr_id: i64, system_id: i64, s: &Subject) -> cr_subject::ActiveModel {
    let (kind, commit, tree, digest) = match s {
        Subject::GitCommit { commit, tree } => (
            "git_commit",
            Some(commit.to_string()),
            Some(tree.to_string()),
            None,
        ),
        Subject::Artifact { digest } => ("artifact", None, None, Some(digest.to_string())),
    };
    cr_subject::ActiveModel {
        change_request_id: Set(cr_id),
        system_id: Set(system_id),
        kind: Set(kind.into()),
        commit_id: Set(commit),
        tree_id: Set(tree),
        digest: Set(digest),
        ..Default::default()
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

async fn replace_subjects(
    db: &impl ConnectionTrait,
    cr_id: i64,
    system_id: i64,
    subjects: &[Subject],
) -> AppResult<()> {
    cr_subject::Entity::delete_many()
        .filter(cr_subject::Column::ChangeRequestId.eq(cr_id))
        .exec(db)
        .await?;
    if !subjects.is_empty() {
        cr_subject::Entity::insert_many(subjects.iter().map(|s| subject_row(cr_id, system_id, s)))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
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
    let signoffs = sign_off::Entity::find()
        .filter(sign_off::Column::ChangeRequestId.eq(row.id))
        .filter(sign_off::Column::Round.eq(row.round))
        .order_by_asc(sign_off::Column::Id)
        .all(db)
        .await?;
    Ok(changegate_domain::ChangeRequest {
        state: CrState::parse(&row.state).map_err(|e| corrupt("state", e))?,
        kind: ChangeKind::parse(&row.kind).map_err(|e| corrupt("kind", e))?,
        level: SecurityLevel::new(i64::from(sys.level)).map_err(|e| corrupt("level", e))?,
        owner_org: sys.owner_org_id,
        filed_by: row.filed_by,
        editors: json_col("editors", &row.editors)?,
        round: u32::try_from(row.round).unwrap_or(0),
        signoffs: signoffs
            .iter()
            .map(|s| {
                Ok(SignOffRecord {
                    reviewer: s.reviewer_id,
                    conclusion: Conclusion::parse(&s.conclusion)
                        .map_err(|e| corrupt("conclusion", e))?,
                    at: s.created_at,
                })
            })
            .collect::<AppResult<_>>()?,
        approved_at: row.approved_at,
        valid_until: row.valid_until,
        emergency_until: row.emergency_until,
    })
}

fn parse_sign_off(n: &wire::NewSignOff) -> AppResult<SignOff> {
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
    let mut findings = vec![];
    for (i, f) in n.findings.iter().enumerate() {
        match Severity::parse(&f.severity) {
            Ok(severity) => findings.push(Finding {
                severity,
                text: f.text.clone(),
            }),
            Err(e) => errors.push((format!("findings[{i}].severity"), e.to_string())),
        }
    }
    match (conclusion, errors.is_empty()) {
        (Some(conclusion), true) => Ok(SignOff {
            conclusion,
            checklist,
            findings,
            conditions: n.conditions.clone(),
        }),
        _ => Err(AppError::Invalid(errors)),
    }
}

impl App {
    async fn load_cr(
        &self,
        db: &impl ConnectionTrait,
        who: &Principal,
        id: i64,
    ) -> AppResult<(cr::Model, system::Model)> {
        let row = cr::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("change request {id}")))?;
        let sys = system::Entity::find_by_id(row.system_id)
            .one(db)
            .await?
            .ok_or_else(|| AppError::Internal(format!("change request {id} has no system")))?;
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
        let subjects = cr_subject::Entity::find()
            .filter(cr_subject::Column::ChangeRequestId.eq(row.id))
            .order_by_asc(cr_subject::Column::Id)
            .all(db)
            .await?;
        let signs = sign_off::Entity::find()
            .filter(sign_off::Column::ChangeRequestId.eq(row.id))
            .order_by_asc(sign_off::Column::Id)
            .all(db)
            .await?;
        let mut ids: Vec<i64> = signs.iter().map(|s| s.reviewer_id).collect();
        ids.push(row.filed_by);
        let users: HashMap<i64, user::Model> = user::Entity::find()
            .filter(user::Column::Id.is_in(ids))
            .all(db)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let name = |id: i64| {
            users
                .get(&id)
                .map(|u| (u.username.clone(), u.display_name.clone()))
                .unwrap_or_default()
        };
        let level = SecurityLevel::new(i64::from(sys.level)).map_err(|e| corrupt("level", e))?;
        Ok(wire::ChangeRequest {
            id: row.id,
            system: sys.code.clone(),
            kind: row.kind.clone(),
            title: row.title.clone(),
            description: row.description.clone(),
            state: row.state.clone(),
            environments: json_col("environments", &row.environments)?,
            subjects: subjects.iter().map(wire_subject).collect(),
            components: json_col("components", &row.components)?,
            filed_by: name(row.filed_by).0,
            round: row.round,
            quorum: self.pack.level(level).quorum,
            approved_at: row.approved_at,
            valid_until: row.valid_until,
            emergency_until: row.emergency_until,
            git: row
                .git_facts
                .as_deref()
                .map(|g| json_col("git facts", g))
                .transpose()?,
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
                        conclusion: s.conclusion.clone(),
                        checklist: json_col("checklist", &s.checklist)?,
                        findings: json_col("findings", &s.findings)?,
                        conditions: json_col("conditions", &s.conditions)?,
                        at: s.created_at,
                    })
                })
                .collect::<AppResult<_>>()?,
        })
    }

    /// Files a change request (owner of the system's organisation). It starts as a draft.
    #[instrument(skip_all, fields(system = %n.system), err)]
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
        let mut errors = vec![];
        let kind = ChangeKind::parse(&n.kind)
            .map_err(|e| errors.push(("kind".to_owned(), e.to_string())))
            .ok();
        push_text(&mut errors, "title", &n.title, 200, true);
        push_text(&mut errors, "description", &n.description, 20_000, false);
        let sys_envs: Vec<String> = json_col("environments", &sys.environments)?;
        let envs = parse_envs(&n.environments, &sys_envs, &mut errors);
        let subjects = parse_subjects(&n.subjects, &mut errors);
        check_components(&n.components, &mut errors);
        if let Some(g) = &n.git {
            check_git_facts(g, &subjects, &mut errors);
        }
        if let Some(id) = n.remediates_incident {
            let open = incident::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .is_some_and(|i| i.system_id == sys.id && i.status == "open");
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
        let row = cr::ActiveModel {
            system_id: Set(sys.id),
            kind: Set(kind.as_str().into()),
            title: Set(n.title),
            description: Set(n.description),
            state: Set(CrState::Draft.as_str().into()),
            environments: Set(to_json(&envs)),
            components: Set(to_json(&n.components)),
            git_facts: Set(n.git.as_ref().map(to_json)),
            remediates_incident: Set(n.remediates_incident),
            filed_by: Set(who.user_id),
            editors: Set(to_json(&[who.user_id])),
            round: Set(0),
            approved_at: Set(None),
            valid_until: Set(None),
            created_at: Set(tx.at()),
            updated_at: Set(tx.at()),
            ..Default::default()
        }
        .insert(&tx.txn)
        .await?;
        replace_subjects(&tx.txn, row.id, sys.id, &subjects).await?;
        let view = self.change_view(&tx.txn, &row, &sys).await?;
        let after = serde_json::json!({ "system": sys.code, "kind": view.kind, "title": view.title, "description": view.description,
            "environments": view.environments, "subjects": view.subjects, "components": view.components, "state": view.state });
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
    #[instrument(skip_all, fields(id), err)]
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
                ChangeKind::parse(&row.kind)
                    .ok()
                    .map(|k| check_justification(k, d))
            {
                errors.push((field, message));
            }
        }
        let sys_envs: Vec<String> = json_col("environments", &sys.environments)?;
        let envs = e
            .environments
            .as_ref()
            .map(|v| parse_envs(v, &sys_envs, &mut errors));
        let subjects = e.subjects.as_ref().map(|v| parse_subjects(v, &mut errors));
        if let Some(c) = &e.components {
            check_components(c, &mut errors);
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let before = self.change_view(&tx.txn, &row, &sys).await?;
        let mut am: cr::ActiveModel = row.clone().into();
        if let Some(t) = e.title {
            am.title = Set(t);
        }
        if let Some(d) = e.description {
            am.description = Set(d);
        }
        if let Some(v) = envs {
            am.environments = Set(to_json(&v));
        }
        if let Some(c) = e.components {
            am.components = Set(to_json(&c));
        }
        am.editors = Set(to_json(&next.editors));
        am.updated_at = Set(tx.at());
        let row = am.update(&tx.txn).await?;
        if let Some(s) = subjects {
            replace_subjects(&tx.txn, id, sys.id, &s).await?;
        }
        let after = self.change_view(&tx.txn, &row, &sys).await?;
        let snap = |v: &wire::ChangeRequest| {
            serde_json::json!({ "title": v.title, "description": v.description,
            "environments": v.environments, "subjects": v.subjects, "components": v.components })
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
    #[instrument(skip_all, fields(id, command = cmd.name()), err)]
    pub async fn act_on_change(
        &self,
        who: Option<&Principal>,
        id: i64,
        cmd: Command,
    ) -> AppResult<wire::ChangeRequest> {
        let tx = self.begin().await?;
        let viewer = who.cloned().unwrap_or_else(Principal::operator);
        let (row, sys) = self.load_cr(&tx.txn, &viewer, id).await?;
        let current = domain_view(&tx.txn, &row, &sys).await?;
        let actor = who.map_or(Actor::System, Principal::actor);
        let (next, _effect) = apply(&current, &actor, &cmd, &self.pack, tx.at())?;
        let row = self.save_state(&tx.txn, row, &next, tx.at()).await?;
        let note = match &cmd {
            Command::RequestChanges { note } => Some(note.clone()),
            Command::Revoke { reason } => Some(reason.clone()),
            _ => None,
        };
        let mut after = serde_json::json!({ "state": next.state.as_str(), "round": next.round, "valid_until": next.valid_until });
        if let Some(n) = note {
            after["note"] = serde_json::Value::String(n);
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

    async fn save_state(
        &self,
        db: &impl ConnectionTrait,
        row: cr::Model,
        next: &changegate_domain::ChangeRequest,
        at: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<cr::Model> {
        let mut am: cr::ActiveModel = row.into();
        am.state = Set(next.state.as_str().into());
        am.round = Set(i32::try_from(next.round).unwrap_or(i32::MAX));
        am.editors = Set(to_json(&next.editors));
        am.approved_at = Set(next.approved_at);
        am.valid_until = Set(next.valid_until);
        am.emergency_until = Set(next.emergency_until);
        am.updated_at = Set(at);
        Ok(am.update(db).await?)
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
        let s = parse_sign_off(n)?;
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

    /// Records a reviewer's evaluation and sign-off. The second factor is the caller's to ask
    /// ([`App::sign_off_with_code`] for the API, [`App::sign_off_with_second_factor`] for the
    /// web UI).
    #[instrument(skip_all, fields(id), err)]
    pub async fn sign_off(
        &self,
        who: &Principal,
        id: i64,
        n: wire::NewSignOff,
    ) -> AppResult<wire::ChangeRequest> {
        let s = parse_sign_off(&n)?;
        let tx = self.begin().await?;
        let (row, sys) = self.load_cr(&tx.txn, who, id).await?;
        let current = domain_view(&tx.txn, &row, &sys).await?;
        let (next, _) = apply(
            &current,
            &who.actor(),
            &Command::SignOff(s.clone()),
            &self.pack,
            tx.at(),
        )?;
        sign_off::ActiveModel {
            change_request_id: Set(id),
            round: Set(row.round),
            reviewer_id: Set(who.user_id),
            conclusion: Set(s.conclusion.as_str().into()),
            checklist: Set(to_json(&n.checklist)),
            findings: Set(to_json(&n.findings)),
            conditions: Set(to_json(&n.conditions)),
            created_at: Set(tx.at()),
            ..Default::default()
        }
        .insert(&tx.txn)
        .await?;
        let row = self.save_state(&tx.txn, row, &next, tx.at()).await?;
        let after = serde_json::json!({ "conclusion": n.conclusion, "checklist": n.checklist, "findings": n.findings,
            "conditions": n.conditions, "round": row.round, "state": next.state.as_str(), "valid_until": next.valid_until });
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
        match (current.kind, next.state) {
            (ChangeKind::ReReview, CrState::Approved) => {
                self.record_evaluation(&tx, who, &sys).await?
            }
            (ChangeKind::ReReview, CrState::Rejected) => {
                self.set_system_status(&tx, who, &sys, "suspended").await?
            }
            // A change that passes its evaluation lifts a suspension by a failed re-review.
            (_, CrState::Approved) if sys.status == "suspended" => {
                self.set_system_status(&tx, who, &sys, "active").await?
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
        tx.commit().await?;
        Ok(view)
    }

    async fn set_system_status(
        &self,
        tx: &WriteTx<'_>,
        who: &Principal,
        sys: &system::Model,
        status: &str,
    ) -> AppResult<()> {
        let mut am: system::ActiveModel = sys.clone().into();
        am.status = Set(status.to_owned());
        am.updated_at = Set(tx.at());
        am.update(&tx.txn).await?;
        let action = if status == "suspended" {
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
        let mut am: system::ActiveModel = sys.clone().into();
        am.last_evaluated_on = Set(Some(on));
        am.next_review_due = Set(due);
        am.status = Set("active".to_owned());
        am.updated_at = Set(tx.at());
        am.update(&tx.txn).await?;
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

    /// Change requests visible to the principal, newest first.
    pub async fn list_changes(
        &self,
        who: &Principal,
        system: Option<&str>,
        state: Option<&str>,
        limit: u64,
    ) -> AppResult<wire::ChangeRequestList> {
        let mut q = cr::Entity::find()
            .order_by_desc(cr::Column::Id)
            .limit(limit.clamp(1, 500));
        let mut systems = system::Entity::find();
        if let Some(code) = system {
            systems = systems.filter(system::Column::Code.eq(code));
        }
        if !who.role.sees_every_organisation() {
            systems = systems.filter(system::Column::OwnerOrgId.eq(who.org_id));
        }
        let syss: HashMap<i64, String> = systems
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| (s.id, s.code))
            .collect();
        if system.is_some() || !who.role.sees_every_organisation() {
            q = q.filter(cr::Column::SystemId.is_in(syss.keys().copied().collect::<Vec<_>>()));
        }
        if let Some(s) = state {
            let s = CrState::parse(s).map_err(|e| AppError::parse("state", e))?;
            q = q.filter(cr::Column::State.eq(s.as_str()));
        }
        let rows = q.all(&self.db).await?;
        Ok(wire::ChangeRequestList {
            items: rows
                .into_iter()
                .map(|r| wire::ChangeRequestSummary {
                    id: r.id,
                    system: syss.get(&r.system_id).cloned().unwrap_or_default(),
                    kind: r.kind,
                    title: r.title,
                    state: r.state,
                    created_at: r.created_at,
                })
                .collect(),
        })
    }
}
