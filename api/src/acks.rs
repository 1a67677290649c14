//! Acknowledgements of alert groups (a Strata extension of the Alertmanager API v2, issue
//! #26): `GET /api/v2/acks` lists them (`active` filter), `POST /api/v2/acks` acknowledges
//! a firing group (by `groupKey`, or `receiver` + `groupLabels`) until `endsAt`, and
//! `DELETE /api/v2/ack/{id}` expires one. An acknowledged group stops its repeat
//! notifications until it changes or the acknowledgement ends; PagerDuty and Opsgenie
//! receivers get it forwarded. Errors are a JSON string, as the other v2 routes answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use strata_alerting::notifier::acks::{AckError, Acknowledgement};
use strata_alerting::notifier::dispatch::{AckRequest, AckTarget};
use strata_alerting::notifier::now_ms;
use utoipa::ToSchema;

use crate::AppState;
use crate::alertmanager::{AmError, bad, flag, notifier, parse_ts, ts};
use crate::params::Params;

impl From<AckError> for AmError {
    fn from(e: AckError) -> AmError {
        let status = match e {
            AckError::NotFound(_) => StatusCode::NOT_FOUND,
            AckError::Invalid(_) => StatusCode::BAD_REQUEST,
            AckError::Limit(_) => StatusCode::TOO_MANY_REQUESTS,
            AckError::Persist(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        AmError(status, e.to_string())
    }
}

/// `{state}`: `active` or `expired`.
#[derive(Serialize, ToSchema)]
pub(crate) struct AckStatus {
    state: String,
}

/// An acknowledgement as the API lists it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GettableAck {
    id: String,
    group_key: String,
    receiver: String,
    /// Fingerprints (hex) of the group's firing alerts when acknowledged.
    fingerprints: Vec<String>,
    created_by: String,
    comment: String,
    starts_at: String,
    ends_at: String,
    status: AckStatus,
}

/// The API form of `a` at `now`.
pub(crate) fn gettable_ack(a: &Acknowledgement, now: i64) -> GettableAck {
    GettableAck {
        id: a.id.clone(),
        group_key: a.group_key.clone(),
        receiver: a.receiver.clone(),
        fingerprints: a.fingerprints.iter().map(|f| format!("{f:016x}")).collect(),
        created_by: a.created_by.clone(),
        comment: a.comment.clone(),
        starts_at: ts(a.starts_at),
        ends_at: ts(a.ends_at),
        status: AckStatus {
            state: if a.active(now) { "active" } else { "expired" }.to_owned(),
        },
    }
}

/// An acknowledgement to create: the group by `groupKey` (optionally with `receiver`) or
/// by `receiver` + `groupLabels`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PostableAck {
    #[serde(default)]
    group_key: Option<String>,
    #[serde(default)]
    receiver: Option<String>,
    #[serde(default)]
    group_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
    /// RFC 3339, in the future and at most 30 days ahead.
    ends_at: String,
}

/// `{ackID}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct AckCreated {
    #[serde(rename = "ackID")]
    ack_id: String,
}

/// `GET /api/v2/acks`.
#[utoipa::path(
    get,
    path = "/api/v2/acks",
    tag = "alertmanager",
    summary = "Acknowledgements of alert groups (Strata extension), latest first",
    params(("active" = Option<bool>, Query, description = "Only active acknowledgements (false: all held)")),
    responses(
        (status = 200, description = "Acknowledgements", body = Vec<GettableAck>),
        (status = 400, description = "Bad parameter", body = String, content_type = "application/json")
    )
)]
pub(crate) async fn get_acks(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Vec<GettableAck>>, AmError> {
    let n = notifier(&s)?;
    let only_active = flag(&p, "active", false)?;
    let now = now_ms();
    let mut list: Vec<Acknowledgement> = n
        .acks
        .list()
        .into_iter()
        .filter(|a| !only_active || a.active(now))
        .collect();
    list.sort_by_key(|a| std::cmp::Reverse(a.starts_at));
    Ok(Json(list.iter().map(|a| gettable_ack(a, now)).collect()))
}

/// `POST /api/v2/acks`.
#[utoipa::path(
    post,
    path = "/api/v2/acks",
    tag = "alertmanager",
    summary = "Acknowledge a firing alert group (Strata extension)",
    request_body(content = PostableAck, content_type = "application/json"),
    responses(
        (status = 200, description = "The acknowledgement's id", body = AckCreated),
        (status = 400, description = "Invalid acknowledgement", body = String, content_type = "application/json"),
        (status = 404, description = "Unknown or resolved group", body = String, content_type = "application/json"),
        (status = 429, description = "Too many acknowledgements", body = String, content_type = "application/json")
    )
)]
pub(crate) async fn post_ack(
    State(s): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<AckCreated>, AmError> {
    let n = notifier(&s)?;
    let p: PostableAck = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("parsing the acknowledgement: {e}")))?;
    let target = match (p.group_key, p.receiver, p.group_labels) {
        (Some(k), receiver, None) if !k.is_empty() => AckTarget::Key {
            group_key: k,
            receiver: receiver.filter(|r| !r.is_empty()),
        },
        (None, Some(receiver), Some(labels)) if !receiver.is_empty() => {
            AckTarget::Labels { receiver, labels }
        }
        _ => {
            return Err(bad(
                "give either groupKey (optionally with receiver) or receiver and groupLabels",
            ));
        }
    };
    let req = AckRequest {
        target,
        created_by: p.created_by,
        comment: p.comment,
        ends_at: parse_ts("endsAt", &p.ends_at)?,
    };
    let ack = n.acknowledge(req, now_ms())?;
    Ok(Json(AckCreated { ack_id: ack.id }))
}

/// `DELETE /api/v2/ack/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v2/ack/{id}",
    tag = "alertmanager",
    summary = "Expire an acknowledgement (Strata extension)",
    params(("id" = String, Path, description = "Acknowledgement id")),
    responses(
        (status = 200, description = "Expired"),
        (status = 400, description = "Already expired", body = String, content_type = "application/json"),
        (status = 404, description = "Unknown id", body = String, content_type = "application/json")
    )
)]
pub(crate) async fn delete_ack(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, AmError> {
    let n = notifier(&s)?;
    n.acks.expire(&id, now_ms())?;
    Ok(StatusCode::OK)
}
