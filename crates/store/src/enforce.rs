//! Enforcement's rows: observations of content running, the unapproved content they found, the
//! sources that report them, and GitHub's deployment protection requests (their deliveries and
//! pending answers). Only reads and writes: the gate's verdicts, which content opens an incident,
//! when a source counts as silent and what GitHub is answered are the app's.

use crate::StoreError;
use crate::entity::{
    github_delivery, github_pending, observation, observation_source, unapproved_content,
};
use crate::types::{JsonText, Text};
use changegate_api::ObservedSubject;
use changegate_domain::enforce::GithubReviewState;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};

// Unapproved content.

/// The incident already opened for content `subject` (its key) running on system `system_id`
/// in environment `env`, if that content was reported before.
pub async fn unapproved_content_incident(
    db: &impl ConnectionTrait,
    system_id: i64,
    env: &str,
    subject: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(unapproved_content::Entity::find()
        .filter(unapproved_content::Column::SystemId.eq(system_id))
        .filter(unapproved_content::Column::Environment.eq(env))
        .filter(unapproved_content::Column::Subject.eq(subject))
        .one(db)
        .await?
        .map(|k| k.incident_id))
}

/// Content found running without approval, to remember with its incident.
#[derive(Debug, Clone)]
pub struct NewUnapprovedContent {
    /// The system.
    pub system_id: i64,
    /// The environment's name.
    pub environment: String,
    /// The content's key.
    pub subject: String,
    /// The incident it opened.
    pub incident_id: i64,
    /// When it was first observed.
    pub first_observed_at: DateTime<Utc>,
}

/// Remembers unapproved content `n`.
pub async fn record_unapproved_content(
    db: &impl ConnectionTrait,
    n: NewUnapprovedContent,
) -> Result<(), StoreError> {
    unapproved_content::ActiveModel {
        system_id: Set(n.system_id),
        environment: Set(n.environment),
        subject: Set(n.subject),
        incident_id: Set(n.incident_id),
        first_observed_at: Set(n.first_observed_at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

// Observations.

/// An observation to record.
#[derive(Debug, Clone)]
pub struct NewObservation {
    /// The system.
    pub system_id: i64,
    /// The environment's name.
    pub environment: String,
    /// Who saw it (the source's name).
    pub source: String,
    /// The subjects seen with the gate's verdicts.
    pub subjects: Vec<ObservedSubject>,
    /// Whether any subject ran without approval.
    pub unapproved: bool,
    /// The incident it names, if any.
    pub incident_id: Option<i64>,
    /// When it was observed.
    pub observed_at: DateTime<Utc>,
    /// Who recorded it.
    pub recorded_by: i64,
    /// When it is recorded.
    pub at: DateTime<Utc>,
}

/// Records observation `n`; returns its row.
pub async fn record_observation(
    db: &impl ConnectionTrait,
    n: NewObservation,
) -> Result<observation::Model, StoreError> {
    Ok(observation::ActiveModel {
        system_id: Set(n.system_id),
        environment: Set(n.environment),
        source: Set(n.source),
        subjects: Set(JsonText(n.subjects)),
        unapproved: Set(n.unapproved),
        incident_id: Set(n.incident_id),
        observed_at: Set(n.observed_at),
        recorded_by: Set(n.recorded_by),
        recorded_at: Set(n.at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

// Observation sources.

/// The source `source` of observations of system `system_id` in environment `env`, if it
/// reported before.
pub async fn observation_source(
    db: &impl ConnectionTrait,
    system_id: i64,
    env: &str,
    source: &str,
) -> Result<Option<observation_source::Model>, StoreError> {
    Ok(observation_source::Entity::find()
        .filter(observation_source::Column::SystemId.eq(system_id))
        .filter(observation_source::Column::Environment.eq(env))
        .filter(observation_source::Column::Source.eq(source))
        .one(db)
        .await?)
}

/// Records that source `s` reported again: last observed at `last_observed_at`, recorded by
/// `by`, no longer silent.
pub async fn source_reported(
    db: &impl ConnectionTrait,
    s: observation_source::Model,
    last_observed_at: DateTime<Utc>,
    by: i64,
) -> Result<(), StoreError> {
    let mut am: observation_source::ActiveModel = s.into();
    am.last_observed_at = Set(last_observed_at);
    am.last_recorded_by = Set(by);
    am.silent_since = Set(None);
    am.update(db).await?;
    Ok(())
}

/// A source of observations reporting for the first time.
#[derive(Debug, Clone)]
pub struct NewSource {
    /// The system.
    pub system_id: i64,
    /// The environment's name.
    pub environment: String,
    /// The source's name.
    pub source: String,
    /// When it last observed.
    pub last_observed_at: DateTime<Utc>,
    /// Who recorded its report.
    pub last_recorded_by: i64,
}

/// Records source `n`, not silent.
pub async fn add_source(db: &impl ConnectionTrait, n: NewSource) -> Result<(), StoreError> {
    observation_source::ActiveModel {
        system_id: Set(n.system_id),
        environment: Set(n.environment),
        source: Set(n.source),
        last_observed_at: Set(n.last_observed_at),
        last_recorded_by: Set(n.last_recorded_by),
        silent_since: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Every source of observations, by id.
pub async fn observation_sources(
    db: &impl ConnectionTrait,
) -> Result<Vec<observation_source::Model>, StoreError> {
    Ok(observation_source::Entity::find()
        .order_by_asc(observation_source::Column::Id)
        .all(db)
        .await?)
}

/// The sources that last observed before `before` and are not yet signalled silent.
pub async fn sources_quiet_since(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<Vec<observation_source::Model>, StoreError> {
    Ok(observation_source::Entity::find()
        .filter(observation_source::Column::LastObservedAt.lt(before))
        .filter(observation_source::Column::SilentSince.is_null())
        .all(db)
        .await?)
}

/// The source of observations `id`, if any.
pub async fn observation_source_by_id(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<observation_source::Model>, StoreError> {
    Ok(observation_source::Entity::find_by_id(id).one(db).await?)
}

/// Records that source `s` is signalled silent since `at`.
pub async fn mark_source_silent(
    db: &impl ConnectionTrait,
    s: observation_source::Model,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut am: observation_source::ActiveModel = s.into();
    am.silent_since = Set(Some(at));
    am.update(db).await?;
    Ok(())
}

// GitHub deployment protection.

/// Whether GitHub delivery `delivery_id` was received before.
pub async fn github_delivery_seen(
    db: &impl ConnectionTrait,
    delivery_id: &str,
) -> Result<bool, StoreError> {
    Ok(github_delivery::Entity::find()
        .filter(github_delivery::Column::DeliveryId.eq(delivery_id))
        .one(db)
        .await?
        .is_some())
}

/// Records GitHub delivery `delivery_id` of event `event`, received at `at`.
pub async fn record_github_delivery(
    db: &impl ConnectionTrait,
    delivery_id: &str,
    event: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    github_delivery::ActiveModel {
        delivery_id: Set(delivery_id.to_owned()),
        event: Set(event.to_owned()),
        received_at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A GitHub deployment protection request to answer.
#[derive(Debug, Clone)]
pub struct NewGithubRequest {
    /// Its delivery.
    pub delivery_id: String,
    /// The GitHub App installation that sent it.
    pub installation_id: i64,
    /// The repository (`owner/name`).
    pub repository: String,
    /// GitHub's environment name.
    pub environment_name: String,
    /// The system it maps to, if any.
    pub system_id: Option<i64>,
    /// The environment it maps to (empty when not mapped).
    pub environment: String,
    /// The commit to deploy.
    pub sha: String,
    /// Where to answer.
    pub callback_url: String,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// An answer decided on arrival (the request is rejected at once), with its comment.
    pub decided: Option<(GithubReviewState, String)>,
}

/// Records request `n`, unanswered; returns its row.
pub async fn add_github_request(
    db: &impl ConnectionTrait,
    n: NewGithubRequest,
) -> Result<github_pending::Model, StoreError> {
    let (state, comment) = match n.decided {
        Some((s, c)) => (Some(Text(s)), Some(c)),
        None => (None, None),
    };
    Ok(github_pending::ActiveModel {
        delivery_id: Set(n.delivery_id),
        installation_id: Set(n.installation_id),
        repository: Set(n.repository),
        environment_name: Set(n.environment_name),
        system_id: Set(n.system_id),
        environment: Set(n.environment),
        sha: Set(n.sha),
        tree_id: Set(None),
        callback_url: Set(n.callback_url),
        created_at: Set(n.at),
        answered_at: Set(None),
        state: Set(state),
        comment: Set(comment),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// The GitHub requests not yet answered, by id.
pub async fn unanswered_github_requests(
    db: &impl ConnectionTrait,
) -> Result<Vec<github_pending::Model>, StoreError> {
    Ok(github_pending::Entity::find()
        .filter(github_pending::Column::AnsweredAt.is_null())
        .order_by_asc(github_pending::Column::Id)
        .all(db)
        .await?)
}

/// Records the tree `tree_id` of request `p`'s commit.
pub async fn set_github_tree(
    db: &impl ConnectionTrait,
    p: github_pending::Model,
    tree_id: String,
) -> Result<(), StoreError> {
    let mut am: github_pending::ActiveModel = p.into();
    am.tree_id = Set(Some(tree_id));
    am.update(db).await?;
    Ok(())
}

/// Records that request `p` was answered `state` with `comment` at `at`.
pub async fn answer_github_request(
    db: &impl ConnectionTrait,
    p: github_pending::Model,
    state: GithubReviewState,
    comment: String,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut am: github_pending::ActiveModel = p.into();
    am.answered_at = Set(Some(at));
    am.state = Set(Some(Text(state)));
    am.comment = Set(Some(comment));
    am.update(db).await?;
    Ok(())
}
