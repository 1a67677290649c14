//! Alertmanager API v2 over the built-in notifier (`--alertmanager.config.file`): alerts,
//! alert groups (with their acknowledgement, see [`crate::acks`]), silences, status (with the notifier cluster's members, `--cluster.*`) and
//! receivers in Alertmanager's shapes, so Prometheus servers can send alerts here and
//! `amtool` works against it. Errors are a JSON string, as Alertmanager answers them.
//! Without a notifier every route answers 503.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use strata_alerting::notifier::alert::Alert;
use strata_alerting::notifier::config::{MatchOp, Matcher, matches_all, parse_matchers};
use strata_alerting::notifier::dispatch::Inhibition;
use strata_alerting::notifier::silences::{Silence, SilenceError, SilenceInput, SilenceState};
use strata_alerting::notifier::{Notifier, now_ms};
use strata_grammar::format_rfc3339;
use utoipa::ToSchema;

use crate::AppState;
use crate::acks::{GettableAck, gettable_ack};
use crate::params::{Params, parse_time};

/// An error answer: status and a JSON string.
pub(crate) struct AmError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for AmError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<SilenceError> for AmError {
    fn from(e: SilenceError) -> AmError {
        let status = match e {
            SilenceError::NotFound(_) => StatusCode::NOT_FOUND,
            SilenceError::Invalid(_) => StatusCode::BAD_REQUEST,
            SilenceError::Persist(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        AmError(status, e.to_string())
    }
}

pub(crate) fn bad(msg: impl Into<String>) -> AmError {
    AmError(StatusCode::BAD_REQUEST, msg.into())
}

pub(crate) fn notifier(s: &AppState) -> Result<Arc<Notifier>, AmError> {
    s.notifier.get().cloned().ok_or_else(|| {
        AmError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the built-in Alertmanager is off: start strata with --alertmanager.config.file".into(),
        )
    })
}

/// An alert as Prometheus posts it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostableAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
}

/// `{state, silencedBy, inhibitedBy}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AlertStatus {
    /// `active`, `suppressed` or `unprocessed`.
    state: String,
    silenced_by: Vec<String>,
    inhibited_by: Vec<String>,
}

/// `{name}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReceiverName {
    name: String,
}

/// An alert as the API lists it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GettableAlert {
    annotations: BTreeMap<String, String>,
    ends_at: String,
    fingerprint: String,
    receivers: Vec<ReceiverName>,
    starts_at: String,
    status: AlertStatus,
    updated_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    labels: BTreeMap<String, String>,
}

/// One aggregation group, with its key and (an extension) its active acknowledgement.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AlertGroup {
    labels: BTreeMap<String, String>,
    receiver: ReceiverName,
    alerts: Vec<GettableAlert>,
    /// The dispatcher's group key (what `POST /api/v2/acks` takes).
    group_key: String,
    /// The acknowledgement in force (active and covering the group's firing alerts).
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledgement: Option<GettableAck>,
}

/// A silence matcher.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SilenceMatcher {
    name: String,
    value: String,
    is_regex: bool,
    #[serde(default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence to create or update (with `id`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<SilenceMatcher>,
    starts_at: String,
    ends_at: String,
    created_by: String,
    comment: String,
}

/// `{state}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct SilenceStatus {
    /// `pending`, `active` or `expired`.
    state: String,
}

/// A silence as the API lists it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GettableSilence {
    id: String,
    status: SilenceStatus,
    updated_at: String,
    matchers: Vec<SilenceMatcher>,
    starts_at: String,
    ends_at: String,
    created_by: String,
    comment: String,
}

/// `{silenceID}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct SilenceCreated {
    #[serde(rename = "silenceID")]
    silence_id: String,
}

/// `/api/v2/status`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AmStatus {
    cluster: ClusterStatus,
    config: ConfigOriginal,
    uptime: String,
    version_info: VersionInfo,
}

/// `clusterStatus`: this node's name, `ready` or `settling` (`disabled` without
/// `--cluster.listen-address`, then without a name) and the live members, this node
/// included, sorted by name.
#[derive(Serialize, ToSchema)]
pub(crate) struct ClusterStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    status: String,
    peers: Vec<PeerStatus>,
}

/// `peerStatus`: a member's name and gossip address.
#[derive(Serialize, ToSchema)]
pub(crate) struct PeerStatus {
    name: String,
    address: String,
}

/// `{original}`: the configuration, secrets hidden.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConfigOriginal {
    original: String,
}

/// Build information.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionInfo {
    version: String,
    revision: String,
    branch: String,
    build_user: String,
    build_date: String,
    go_version: String,
}

pub(crate) fn ts(ms: i64) -> String {
    format_rfc3339(ms, true)
}

pub(crate) fn parse_ts(field: &str, s: &str) -> Result<i64, AmError> {
    parse_time(s).ok_or_else(|| bad(format!("{field}: {s:?} is not an RFC 3339 time")))
}

/// `filter` parameters: each a matcher (`a="b"`) or a list (`{a="b",c=~"d"}`).
fn filters(p: &Params) -> Result<Vec<Matcher>, AmError> {
    let mut out = Vec::new();
    for f in p.all("filter") {
        let ms = parse_matchers(f).map_err(|e| bad(format!("bad matcher format: {f}: {e}")))?;
        out.extend(ms);
    }
    Ok(out)
}

pub(crate) fn flag(p: &Params, name: &str, default: bool) -> Result<bool, AmError> {
    match p.get(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(bad(format!("{name}: {v:?} is not a boolean"))),
    }
}

fn gettable(n: &Notifier, inh: &Inhibition, a: &Alert, now: i64) -> GettableAlert {
    let silenced_by = n.silences.silenced_by(&a.labels, now);
    let inhibited_by = inh.inhibited_by(&a.labels);
    let state = if silenced_by.is_empty() && inhibited_by.is_empty() {
        "active"
    } else {
        "suppressed"
    };
    GettableAlert {
        annotations: a.annotations.clone(),
        ends_at: ts(a.ends_at),
        fingerprint: format!("{:016x}", a.fingerprint()),
        receivers: n
            .receivers_of(&a.labels)
            .into_iter()
            .map(|name| ReceiverName { name })
            .collect(),
        starts_at: ts(a.starts_at),
        status: AlertStatus {
            state: state.to_owned(),
            silenced_by,
            inhibited_by,
        },
        updated_at: ts(a.updated_at),
        generator_url: a.generator_url.clone(),
        labels: a.labels.clone(),
    }
}

/// Filters of the alert listings.
struct AlertFilter {
    matchers: Vec<Matcher>,
    active: bool,
    silenced: bool,
    inhibited: bool,
    receiver: Option<regex::Regex>,
}

impl AlertFilter {
    fn from(p: &Params) -> Result<AlertFilter, AmError> {
        let receiver = match p.get("receiver").filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => Some(
                regex::Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| bad(format!("receiver: {e}")))?,
            ),
        };
        Ok(AlertFilter {
            matchers: filters(p)?,
            active: flag(p, "active", true)?,
            silenced: flag(p, "silenced", true)?,
            inhibited: flag(p, "inhibited", true)?,
            receiver,
        })
    }

    fn keep(&self, a: &GettableAlert) -> bool {
        let silenced = !a.status.silenced_by.is_empty();
        let inhibited = !a.status.inhibited_by.is_empty();
        let active = !silenced && !inhibited;
        matches_all(&self.matchers, &a.labels)
            && (self.silenced || !silenced)
            && (self.inhibited || !inhibited)
            && (self.active || !active)
            && self
                .receiver
                .as_ref()
                .is_none_or(|re| a.receivers.iter().any(|r| re.is_match(&r.name)))
    }
}

/// `GET /api/v2/alerts`.
#[utoipa::path(
    get,
    path = "/api/v2/alerts",
    tag = "alertmanager",
    summary = "Alerts held by the built-in notifier",
    params(
        ("filter" = Option<Vec<String>>, Query, description = "Label matchers, e.g. alertname=\"Down\""),
        ("active" = Option<bool>, Query, description = "Include active alerts (true)"),
        ("silenced" = Option<bool>, Query, description = "Include silenced alerts (true)"),
        ("inhibited" = Option<bool>, Query, description = "Include inhibited alerts (true)"),
        ("unprocessed" = Option<bool>, Query, description = "Include unprocessed alerts (true)"),
        ("receiver" = Option<String>, Query, description = "Regex of receiver names")
    ),
    responses(
        (status = 200, description = "Alerts", body = Vec<GettableAlert>),
        (status = 400, description = "Bad filter", body = String, content_type = "application/json")
    )
)]
pub(crate) async fn get_alerts(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Vec<GettableAlert>>, AmError> {
    let n = notifier(&s)?;
    let f = AlertFilter::from(&p)?;
    let now = now_ms();
    let inh = n.inhibition(now);
    let out = n
        .active_alerts(now)
        .iter()
        .map(|a| gettable(&n, &inh, a, now))
        .filter(|a| f.keep(a))
        .collect();
    Ok(Json(out))
}

/// `POST /api/v2/alerts`.
#[utoipa::path(
    post,
    path = "/api/v2/alerts",
    tag = "alertmanager",
    summary = "Send alerts (what Prometheus does)",
    request_body(content = Vec<PostableAlert>, content_type = "application/json"),
    responses(
        (status = 200, description = "Accepted"),
        (status = 400, description = "Malformed body or invalid alerts (valid ones are kept)", body = String, content_type = "application/json")
    )
)]
pub(crate) async fn post_alerts(
    State(s): State<Arc<AppState>>,
    body: Bytes,
) -> Result<StatusCode, AmError> {
    let n = notifier(&s)?;
    let posted: Vec<PostableAlert> =
        serde_json::from_slice(&body).map_err(|e| bad(format!("parsing the alerts: {e}")))?;
    let now = now_ms();
    let resolve_timeout = n.loaded().config.global.resolve_timeout.as_millis();
    let mut valid = Vec::with_capacity(posted.len());
    let mut errors = Vec::new();
    for p in posted {
        match validate(p, now, resolve_timeout) {
            Ok(a) => valid.push(a),
            Err(e) => errors.push(e),
        }
    }
    n.metrics
        .invalid
        .fetch_add(errors.len() as u64, std::sync::atomic::Ordering::Relaxed);
    n.put(valid);
    if errors.is_empty() {
        Ok(StatusCode::OK)
    } else {
        Err(bad(errors.join("; ")))
    }
}

/// Alertmanager's defaults and `Alert.Validate`.
///
/// Labels with empty values are dropped first (`removeEmptyLabels`); names may be any
/// non-empty UTF-8 text (Alertmanager's UTF-8 mode).
fn validate(mut p: PostableAlert, now: i64, resolve_timeout: i64) -> Result<Alert, String> {
    p.labels.retain(|_, v| !v.is_empty());
    if p.labels.is_empty() {
        return Err("at least one label pair required".into());
    }
    if p.labels
        .keys()
        .chain(p.annotations.keys())
        .any(String::is_empty)
    {
        return Err("invalid name \"\": empty label or annotation name".into());
    }
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, String> {
        match v
            .as_deref()
            .filter(|s| !s.is_empty() && !s.starts_with("0001-01-01"))
        {
            None => Ok(None),
            Some(s) => parse_time(s)
                .map(Some)
                .ok_or_else(|| format!("{field}: {s:?} is not an RFC 3339 time")),
        }
    };
    let starts = time("startsAt", &p.starts_at)?;
    let ends = time("endsAt", &p.ends_at)?;
    let starts_at = starts.or(ends).unwrap_or(now);
    let timeout = ends.is_none();
    let ends_at = ends.unwrap_or(now + resolve_timeout);
    if ends_at < starts_at {
        return Err("start time must be before end time".into());
    }
    Ok(Alert {
        labels: p.labels,
        annotations: p.annotations,
        starts_at,
        ends_at,
        updated_at: now,
        generator_url: p.generator_url.unwrap_or_default(),
        timeout,
    })
}

/// `GET /api/v2/alerts/groups`.
#[utoipa::path(
    get,
    path = "/api/v2/alerts/groups",
    tag = "alertmanager",
    summary = "Aggregation groups and their alerts",
    params(
        ("filter" = Option<Vec<String>>, Query, description = "Label matchers on the alerts"),
        ("active" = Option<bool>, Query, description = "Include active alerts (true)"),
        ("silenced" = Option<bool>, Query, description = "Include silenced alerts (true)"),
        ("inhibited" = Option<bool>, Query, description = "Include inhibited alerts (true)"),
        ("receiver" = Option<String>, Query, description = "Regex of receiver names")
    ),
    responses(
        (status = 200, description = "Groups", body = Vec<AlertGroup>),
        (status = 400, description = "Bad filter", body = String, content_type = "application/json")
    )
)]
pub(crate) async fn get_groups(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Vec<AlertGroup>>, AmError> {
    let n = notifier(&s)?;
    let f = AlertFilter::from(&p)?;
    let now = now_ms();
    let inh = n.inhibition(now);
    let mut out = Vec::new();
    for (group_key, labels, receiver, alerts) in n.groups(now) {
        if f.receiver
            .as_ref()
            .is_some_and(|re| !re.is_match(&receiver))
        {
            continue;
        }
        // Shown while it holds: a group that changed since is no longer acknowledged.
        let firing = n.notified_fingerprints(&alerts, now);
        let acknowledgement = n
            .acks
            .active_for(&group_key, &receiver, now)
            .filter(|a| a.covers(&firing, now))
            .map(|a| gettable_ack(&a, now));
        let alerts: Vec<GettableAlert> = alerts
            .iter()
            .map(|a| gettable(&n, &inh, a, now))
            .filter(|a| f.keep(a))
            .collect();
        if alerts.is_empty() {
            continue;
        }

        out.push(AlertGroup {
            labels,
            receiver: ReceiverName { name: receiver },
            alerts,
            group_key,
            acknowledgement,
        });
    }
    Ok(Json(out))
}

fn gettable_silence(s: &Silence, now: i64) -> GettableSilence {
    GettableSilence {
        id: s.id.clone(),
        status: SilenceStatus {
            state: s.state(now).as_str().to_owned(),
        },
        updated_at: ts(s.updated_at),
        matchers: s
            .matchers
            .iter()
            .map(|m| SilenceMatcher {
                name: m.name.clone(),
                value: m.value.clone(),
                is_regex: matches!(m.op, MatchOp::Re | MatchOp::NotRe),
                is_equal: matches!(m.op, MatchOp::Eq | MatchOp::Re),
            })
            .collect(),
        starts_at: ts(s.starts_at),
        ends_at: ts(s.ends_at),
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
    }
}

/// `GET /api/v2/silences`.
#[utoipa::path(
    get,
    path = "/api/v2/silences",
    tag = "alertmanager",
    summary = "Silences (active first, then pending, then expired)",
    params(("filter" = Option<Vec<String>>, Query, description = "Silences whose matchers equal-match these labels")),
    responses(
        (status = 200, description = "Silences", body = Vec<GettableSilence>),
        (status = 400, description = "Bad filter", body = String, content_type = "application/json")
    )
)]
pub(crate) async fn get_silences(
    State(s): State<Arc<AppState>>,
    p: Params,
) -> Result<Json<Vec<GettableSilence>>, AmError> {
    let n = notifier(&s)?;
    let f = filters(&p)?;
    let now = now_ms();
    let mut list: Vec<Silence> = n
        .silences
        .list()
        .into_iter()
        .filter(|s| {
            // Alertmanager: the silence's own matchers, seen as labels, must match.
            let labels: BTreeMap<String, String> = s
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect();
            matches_all(&f, &labels)
        })
        .collect();
    let rank = |s: &Silence| match s.state(now) {
        SilenceState::Active => 0,
        SilenceState::Pending => 1,
        SilenceState::Expired => 2,
    };
    list.sort_by(|a, b| {
        rank(a).cmp(&rank(b)).then_with(|| match a.state(now) {
            SilenceState::Active => a.ends_at.cmp(&b.ends_at),
            SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
            SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
        })
    });
    Ok(Json(
        list.iter().map(|s| gettable_silence(s, now)).collect(),
    ))
}

/// `POST /api/v2/silences`.
#[utoipa::path(
    post,
    path = "/api/v2/silences",
    tag = "alertmanager",
    summary = "Create a silence, or update one (with id)",
    request_body(content = PostableSilence, content_type = "application/json"),
    responses(
        (status = 200, description = "The silence's id", body = SilenceCreated),
        (status = 400, description = "Invalid silence", body = String, content_type = "application/json"),
        (status = 404, description = "Unknown id", body = String, content_type = "application/json")
    )
)]
pub(crate) async fn post_silence(
    State(s): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<SilenceCreated>, AmError> {
    let n = notifier(&s)?;
    let p: PostableSilence =
        serde_json::from_slice(&body).map_err(|e| bad(format!("parsing the silence: {e}")))?;
    let mut matchers = Vec::with_capacity(p.matchers.len());
    for m in &p.matchers {
        let op = match (m.is_regex, m.is_equal) {
            (false, true) => MatchOp::Eq,
            (false, false) => MatchOp::NotEq,
            (true, true) => MatchOp::Re,
            (true, false) => MatchOp::NotRe,
        };
        matchers.push(Matcher::new(&m.name, op, &m.value).map_err(bad)?);
    }
    let input = SilenceInput {
        id: p.id.filter(|i| !i.is_empty()),
        matchers,
        starts_at: parse_ts("startsAt", &p.starts_at)?,
        ends_at: parse_ts("endsAt", &p.ends_at)?,
        created_by: p.created_by,
        comment: p.comment,
    };
    let id = n.silences.set(input, now_ms())?;
    Ok(Json(SilenceCreated { silence_id: id }))
}

/// `GET /api/v2/silence/{id}`.
#[utoipa::path(
    get,
    path = "/api/v2/silence/{id}",
    tag = "alertmanager",
    summary = "One silence",
    params(("id" = String, Path, description = "Silence id")),
    responses(
        (status = 200, description = "The silence", body = GettableSilence),
        (status = 404, description = "Unknown id", body = String, content_type = "application/json")
    )
)]
pub(crate) async fn get_silence(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<GettableSilence>, AmError> {
    let n = notifier(&s)?;
    n.silences
        .get(&id)
        .map(|s| Json(gettable_silence(&s, now_ms())))
        .ok_or_else(|| AmError(StatusCode::NOT_FOUND, format!("silence {id} not found")))
}

/// `DELETE /api/v2/silence/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v2/silence/{id}",
    tag = "alertmanager",
    summary = "Expire a silence",
    params(("id" = String, Path, description = "Silence id")),
    responses(
        (status = 200, description = "Expired"),
        (status = 404, description = "Unknown id", body = String, content_type = "application/json")
    )
)]
pub(crate) async fn delete_silence(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, AmError> {
    let n = notifier(&s)?;
    n.silences.expire(&id, now_ms())?;
    Ok(StatusCode::OK)
}

/// `GET /api/v2/status`.
#[utoipa::path(
    get,
    path = "/api/v2/status",
    tag = "alertmanager",
    summary = "Notifier status: cluster, configuration, uptime, version",
    responses((status = 200, description = "Status", body = AmStatus))
)]
pub(crate) async fn status(State(s): State<Arc<AppState>>) -> Result<Json<AmStatus>, AmError> {
    let n = notifier(&s)?;
    let cluster = match n.cluster() {
        Some(p) => ClusterStatus {
            name: Some(p.name().to_owned()),
            status: p.status().to_owned(),
            peers: p
                .members()
                .into_iter()
                .map(|m| PeerStatus {
                    name: m.name,
                    address: m.address.to_string(),
                })
                .collect(),
        },
        None => ClusterStatus {
            name: None,
            status: "disabled".into(),
            peers: Vec::new(),
        },
    };
    Ok(Json(AmStatus {
        cluster,
        // The configuration re-marshalled with secrets as `<secret>`, as Alertmanager does.
        config: ConfigOriginal {
            original: n
                .loaded()
                .config
                .to_yaml()
                .map_err(|e| AmError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
        },
        uptime: ts(n.started_ms),
        version_info: VersionInfo {
            version: s.build.version.to_owned(),
            revision: s.build.revision.to_owned(),
            branch: String::new(),
            build_user: String::new(),
            build_date: String::new(),
            go_version: format!("strata (rust) {}", s.build.version),
        },
    }))
}

/// `GET /api/v2/receivers`.
#[utoipa::path(
    get,
    path = "/api/v2/receivers",
    tag = "alertmanager",
    summary = "Receiver names",
    responses((status = 200, description = "Receivers", body = Vec<ReceiverName>))
)]
pub(crate) async fn receivers(
    State(s): State<Arc<AppState>>,
) -> Result<Json<Vec<ReceiverName>>, AmError> {
    let n = notifier(&s)?;
    Ok(Json(
        n.loaded()
            .config
            .receivers
            .iter()
            .map(|r| ReceiverName {
                name: r.name.clone(),
            })
            .collect(),
    ))
}
