//! The routing tree: routes as written, their checks, the settings each route inherits
//! from its parent, and Alertmanager's depth-first matching of an alert's labels.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::error::ConfigError;
use super::locate::Locator;
use super::matchers::{self, Matcher, is_label_name, matchers_string};
use super::scalar::{or_default, string_map};

/// A route. Public fields are as written; the accessors give effective (inherited) values.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Route {
    /// `receiver` (inherited when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// `group_by` as written (`...` = all labels; inherited when unset or empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    /// `continue`: keep matching siblings after this route matched.
    #[serde(rename = "continue")]
    pub continue_matching: bool,
    /// Deprecated `match`: label → exact value.
    #[serde(
        rename = "match",
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_eq: BTreeMap<String, String>,
    /// Deprecated `match_re`: label → regex (anchored).
    #[serde(
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_re: BTreeMap<String, String>,
    /// `matchers`, sorted.
    #[serde(
        deserialize_with = "matchers::de_list",
        serialize_with = "matchers::ser_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub matchers: Vec<Matcher>,
    /// `mute_time_intervals` (not inherited).
    #[serde(deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<String>,
    /// `active_time_intervals` (not inherited).
    #[serde(deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub active_time_intervals: Vec<String>,
    /// `routes`: children, tried in order.
    #[serde(deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// `group_wait` (30s on the root; inherited when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<Duration>,
    /// `group_interval` (5m on the root; inherited when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<Duration>,
    /// `repeat_interval` (4h on the root; inherited when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<Duration>,
    #[serde(skip)]
    eff: Effective,
}

/// Settings after inheritance, filled in when the configuration is loaded.
#[derive(Clone, Debug, Default)]
struct Effective {
    id: String,
    key: String,
    receiver: String,
    group_by: Vec<String>,
    group_by_all: bool,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
    matchers: Vec<Matcher>,
}

impl Route {
    /// Stable unique id, Alertmanager's `Route.ID`: the parent's id, the matchers and the
    /// index among the siblings, `{}/{probe_receiver="slack"}/0`.
    pub fn id(&self) -> &str {
        &self.eff.id
    }

    /// Alertmanager's `Route.Key`: the matchers of the route and its ancestors,
    /// `{}/{probe_receiver="slack"}`; the prefix of the route's group keys.
    pub fn key(&self) -> &str {
        &self.eff.key
    }

    /// Effective receiver name.
    pub fn receiver(&self) -> &str {
        &self.eff.receiver
    }

    /// Effective `group_by` labels (empty with [`Route::group_by_all`]).
    pub fn group_by(&self) -> &[String] {
        &self.eff.group_by
    }

    /// Whether alerts are grouped by all their labels (`group_by: ['...']`).
    pub fn group_by_all(&self) -> bool {
        self.eff.group_by_all
    }

    /// Effective `group_wait`.
    pub fn group_wait(&self) -> Duration {
        self.eff.group_wait
    }

    /// Effective `group_interval`.
    pub fn group_interval(&self) -> Duration {
        self.eff.group_interval
    }

    /// Effective `repeat_interval`.
    pub fn repeat_interval(&self) -> Duration {
        self.eff.repeat_interval
    }

    /// All matchers of this route (`match`, `match_re` and `matchers`), sorted.
    pub fn all_matchers(&self) -> &[Matcher] {
        &self.eff.matchers
    }

    /// The routes an alert with `labels` is dispatched to, in Alertmanager's order.
    pub fn matching(&self, labels: &BTreeMap<String, String>) -> Vec<&Route> {
        let mut out = Vec::new();
        self.collect(labels, &mut out);
        out
    }

    fn collect<'a>(&'a self, labels: &BTreeMap<String, String>, out: &mut Vec<&'a Route>) -> bool {
        if !matchers::matches_all(&self.eff.matchers, labels) {
            return false;
        }
        let before = out.len();
        for child in &self.routes {
            if child.collect(labels, out) && !child.continue_matching {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    /// Checks the root route and resolves the whole tree.
    pub(super) fn resolve_root(
        &mut self,
        loc: &Locator<'_>,
        receivers: &HashSet<String>,
        intervals: &HashSet<String>,
    ) -> Result<(), ConfigError> {
        let rule = if self.receiver.as_deref().unwrap_or_default().is_empty() {
            Some("root route must specify a default receiver")
        } else if !(self.matchers.is_empty()
            && self.match_eq.is_empty()
            && self.match_re.is_empty())
        {
            Some("root route must not have any matchers")
        } else if !self.mute_time_intervals.is_empty() {
            Some("root route must not have any mute time intervals")
        } else if !self.active_time_intervals.is_empty() {
            Some("root route must not have any active time intervals")
        } else if self.continue_matching {
            Some("cannot have continue in root route")
        } else {
            None
        };
        if let Some(msg) = rule {
            return Err(loc.err("route", msg));
        }
        let defaults = Effective {
            group_wait: Duration(30_000),
            group_interval: Duration(300_000),
            repeat_interval: Duration(4 * 3_600_000),
            ..Effective::default()
        };
        let names = (receivers, intervals);
        self.resolve("route", &defaults, None, loc, names)
    }

    fn resolve(
        &mut self,
        path: &str,
        parent: &Effective,
        index: Option<usize>,
        loc: &Locator<'_>,
        (receivers, intervals): (&HashSet<String>, &HashSet<String>),
    ) -> Result<(), ConfigError> {
        let at = |key: &str, msg: String| loc.err_at(path, &format!("{path}.{key}"), msg);
        let mut eff = parent.clone();
        if let Some(gb) = self.group_by.as_ref().filter(|gb| !gb.is_empty()) {
            let all = gb.iter().any(|l| l == "...");
            if all && gb.len() > 1 {
                let msg = "cannot have wildcard group_by (`...`) and other labels at the same time";
                return Err(at("group_by", msg.to_owned()));
            }
            let mut seen = HashSet::new();
            for l in gb.iter().filter(|l| *l != "...") {
                if !is_label_name(l) {
                    return Err(at(
                        "group_by",
                        format!("invalid label name {l:?} in group_by list"),
                    ));
                }
                if !seen.insert(l) {
                    return Err(at(
                        "group_by",
                        format!("duplicated label {l:?} in group_by"),
                    ));
                }
            }
            eff.group_by = if all { Vec::new() } else { gb.clone() };
            eff.group_by_all = all;
        }
        for (key, d) in [
            ("group_interval", self.group_interval),
            ("repeat_interval", self.repeat_interval),
        ] {
            if d == Some(Duration(0)) {
                return Err(at(key, format!("{key} cannot be zero")));
            }
        }
        eff.group_wait = self.group_wait.unwrap_or(parent.group_wait);
        eff.group_interval = self.group_interval.unwrap_or(parent.group_interval);
        eff.repeat_interval = self.repeat_interval.unwrap_or(parent.repeat_interval);
        if let Some(r) = self.receiver.as_ref().filter(|r| !r.is_empty()) {
            if !receivers.contains(r) {
                return Err(at(
                    "receiver",
                    format!("undefined receiver {r:?} used in route"),
                ));
            }
            eff.receiver.clone_from(r);
        }
        for (key, names) in [
            ("mute_time_intervals", &self.mute_time_intervals),
            ("active_time_intervals", &self.active_time_intervals),
        ] {
            if let Some(n) = names.iter().find(|n| !intervals.contains(*n)) {
                return Err(at(
                    key,
                    format!("undefined time interval {n:?} used in route"),
                ));
            }
        }
        let mut all = matchers::from_maps(&self.match_eq, &self.match_re)
            .map_err(|(field, k, msg)| at(&format!("{field}.{k}"), msg))?;
        all.extend(self.matchers.iter().cloned());
        all.sort();
        eff.key = match index {
            None => matchers_string(&all),
            Some(_) => format!("{}/{}", parent.key, matchers_string(&all)),
        };
        eff.id = match index {
            None => matchers_string(&all),
            Some(i) => format!("{}/{}/{i}", parent.id, matchers_string(&all)),
        };
        eff.matchers = all;
        for (i, child) in self.routes.iter_mut().enumerate() {
            let p = format!("{path}.routes[{i}]");
            child.resolve(&p, &eff, Some(i), loc, (receivers, intervals))?;
        }
        self.eff = eff;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;
    use super::*;

    const TREE: &str = "
route:
  receiver: default
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: ['team=\"db\"']
      receiver: db
      group_by: ['...']
      continue: true
      repeat_interval: 1h
      routes:
        - match: {severity: page}
          receiver: pager
          group_interval: 1m
    - match_re: {team: 'db|web'}
      receiver: web
    - receiver: never
receivers: [{name: default}, {name: db}, {name: pager}, {name: web}, {name: never}]
";

    fn route(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let cfg = Config::from_yaml_str(TREE, "t.yml").unwrap();
        let labels = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let hits = cfg.route.matching(&labels);
        hits.iter()
            .map(|r| (r.receiver().to_owned(), r.id().to_owned()))
            .collect()
    }

    #[test]
    fn routes_depth_first_with_continue() {
        let recv = |pairs: &[(&str, &str)]| -> Vec<String> {
            route(pairs).into_iter().map(|(r, _)| r).collect()
        };
        assert_eq!(
            recv(&[("team", "db"), ("severity", "page")]),
            ["pager", "web"]
        );
        assert_eq!(recv(&[("team", "db")]), ["db", "web"]);
        assert_eq!(recv(&[("team", "web")]), ["web"]);
        assert_eq!(recv(&[("team", "dbx")]), ["never"]);
        let ids: Vec<String> = route(&[("team", "db"), ("severity", "page")])
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(
            ids,
            [
                r#"{}/{team="db"}/0/{severity="page"}/0"#,
                r#"{}/{team=~"db|web"}/1"#
            ]
        );
    }

    #[test]
    fn children_inherit_unset_settings() {
        let cfg = Config::from_yaml_str(TREE, "t.yml").unwrap();
        let root = &cfg.route;
        assert_eq!(root.group_by(), ["alertname"]);
        assert_eq!(root.group_wait(), Duration(10_000));
        assert_eq!(root.group_interval(), Duration(300_000));
        assert_eq!(root.repeat_interval(), Duration(4 * 3_600_000));
        let db = &root.routes[0];
        assert!(db.group_by_all() && db.group_by().is_empty());
        assert_eq!(db.repeat_interval(), Duration(3_600_000));
        let pager = &db.routes[0];
        assert!(pager.group_by_all());
        assert_eq!(pager.group_wait(), Duration(10_000));
        assert_eq!(pager.group_interval(), Duration(60_000));
        assert_eq!(pager.repeat_interval(), Duration(3_600_000));
        let web = &root.routes[1];
        assert_eq!(
            (web.group_by(), web.group_by_all()),
            (&["alertname".to_owned()][..], false)
        );
        assert_eq!(web.repeat_interval(), Duration(4 * 3_600_000));
    }
}
