//! Notification templates: Alertmanager's default templates plus the configuration's
//! `templates:` files, rendered against the notification data of one aggregation group
//! (Alertmanager's `template.Data`).

use std::path::Path;

use crate::notifier::alert::{Alert, LabelSet};
use crate::notifier::webhook::common;
use crate::template::{NotifyAlert, NotifyData, TemplateSet};

/// Go's zero `time.Time` as Alertmanager sends the `endsAt` of firing alerts.
pub const ZERO_TIME_MS: i64 = 0;

/// The template set of one configuration.
pub struct Renderer {
    set: TemplateSet,
}

impl Renderer {
    /// Alertmanager's defaults and the files matching the `templates` globs (relative to
    /// `base`, the configuration file's directory).
    pub fn load(globs: &[String], base: &Path) -> Result<Renderer, String> {
        let mut set = TemplateSet::new();
        for g in globs {
            let pattern = if Path::new(g).is_absolute() {
                g.clone()
            } else {
                base.join(g).display().to_string()
            };
            let paths = glob::glob(&pattern).map_err(|e| format!("templates {g:?}: {e}"))?;
            for p in paths {
                let p = p.map_err(|e| format!("templates {g:?}: {e}"))?;
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| format!("reading template {}: {e}", p.display()))?;
                let name = p.display().to_string();
                set.add_file(&name, &text).map_err(|e| e.to_string())?;
            }
        }
        Ok(Renderer { set })
    }

    /// Renders one configured text (Go's `text/template`).
    pub fn render(&self, text: &str, data: &NotifyData) -> Result<String, String> {
        self.set.render(text, data).map_err(|e| e.to_string())
    }

    /// Renders one configured HTML text (Go's `html/template`, as Alertmanager renders the
    /// email `html` and Telegram's HTML messages).
    pub fn render_html(&self, text: &str, data: &NotifyData) -> Result<String, String> {
        self.set.render_html(text, data).map_err(|e| e.to_string())
    }
}

/// The data of one notification: `alerts` of a group at `now` (ms).
pub fn notify_data(
    receiver: &str,
    group_labels: &LabelSet,
    alerts: &[Alert],
    external_url: &str,
    now: i64,
) -> NotifyData {
    let labels: Vec<&LabelSet> = alerts.iter().map(|a| &a.labels).collect();
    let annotations: Vec<&LabelSet> = alerts.iter().map(|a| &a.annotations).collect();
    let firing = alerts.iter().any(|a| !a.resolved(now));
    NotifyData {
        receiver: receiver.to_owned(),
        status: if firing { "firing" } else { "resolved" }.to_owned(),
        alerts: alerts
            .iter()
            .map(|a| {
                let resolved = a.resolved(now);
                NotifyAlert {
                    status: if resolved { "resolved" } else { "firing" }.to_owned(),
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    starts_at_ms: a.starts_at,
                    ends_at_ms: if resolved { a.ends_at } else { ZERO_TIME_MS },
                    generator_url: a.generator_url.clone(),
                    fingerprint: format!("{:016x}", a.fingerprint()),
                }
            })
            .collect(),
        group_labels: group_labels.clone(),
        common_labels: common(&labels),
        common_annotations: common(&annotations),
        external_url: external_url.to_owned(),
    }
}
