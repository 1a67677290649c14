//! The circular storage against Prometheus's rules and against a model (the newest `max`
//! accepted exemplars in order of ingestion).

use proptest::prelude::*;

use super::*;
use crate::matcher::MatchOp;

fn series(name: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", "j")])
}

fn ex(trace: &str, v: f64, ts: i64) -> Exemplar {
    Exemplar {
        labels: Labels::from_pairs([("trace_id", trace)]),
        value: v,
        ts,
        has_ts: true,
    }
}

fn all_of(s: &ExemplarStore) -> Vec<SeriesExemplars> {
    s.select(
        i64::MIN,
        i64::MAX,
        &[vec![
            Matcher::new(MatchOp::Regex, "__name__", ".+").expect("re"),
        ]],
    )
}

#[test]
fn disabled_storage_refuses() {
    let s = ExemplarStore::new(0, 0);
    assert_eq!(
        s.add(&series("a"), ex("t", 1.0, 1)),
        Err(ExemplarError::Disabled)
    );
    assert!(!s.enabled());
}

#[test]
fn label_set_over_128_characters_is_refused() {
    let s = ExemplarStore::new(10, 0);
    // 8 + 120 = 128 characters: accepted; one more (a multi-byte character counts once) is not.
    let ok = Exemplar {
        labels: Labels::from_pairs([("trace_id", "é".repeat(120))]),
        ..ex("", 1.0, 1)
    };
    assert_eq!(s.add(&series("a"), ok), Ok(true));
    let long = Exemplar {
        labels: Labels::from_pairs([("trace_id", "é".repeat(121))]),
        ..ex("", 1.0, 2)
    };
    assert_eq!(s.add(&series("a"), long), Err(ExemplarError::LabelLength));
}

#[test]
fn duplicates_and_out_of_order() {
    let s = ExemplarStore::new(10, 0);
    let a = series("a");
    assert_eq!(s.add(&a, ex("x", 1.0, 100)), Ok(true));
    assert_eq!(
        s.add(&a, ex("x", 1.0, 100)),
        Ok(false),
        "same as newest: no-op"
    );
    assert_eq!(s.add(&a, ex("y", 2.0, 50)), Err(ExemplarError::OutOfOrder));
    assert_eq!(
        s.add(&a, ex("y", 0.5, 100)),
        Err(ExemplarError::OutOfOrder),
        "same time, lower value"
    );
    assert_eq!(
        s.add(&a, ex("y", 2.0, 100)),
        Ok(true),
        "same time, higher value (native histogram buckets)"
    );
    assert_eq!(s.stats().out_of_order_total, 2);
    // Without a timestamp of its own, a repeated scrape of the same exemplar is a duplicate.
    let b = series("b");
    let scraped = |t| Exemplar {
        has_ts: false,
        ..ex("z", 3.0, t)
    };
    assert_eq!(s.add(&b, scraped(1000)), Ok(true));
    assert_eq!(s.add(&b, scraped(16000)), Ok(false));
    assert_eq!(s.stats().appended_total, 3);
}

#[test]
fn out_of_order_within_window_is_inserted_in_time_order() {
    let s = ExemplarStore::new(10, 1000);
    let a = series("a");
    for (t, ts) in [("1", 100), ("3", 300), ("2", 200), ("0", 50)] {
        assert_eq!(s.add(&a, ex(t, 1.0, ts)), Ok(true), "{t}");
    }
    let got: Vec<i64> = all_of(&s)[0].exemplars.iter().map(|e| e.ts).collect();
    assert_eq!(got, vec![50, 100, 200, 300]);
    assert_eq!(
        s.add(&a, ex("dup", 7.0, 200)),
        Ok(false),
        "an out-of-order repeat of a stored time"
    );
    assert_eq!(
        s.add(&a, ex("old", 1.0, -800)),
        Err(ExemplarError::OutOfOrder)
    );
}

#[test]
fn select_filters_by_time_and_matchers() {
    let s = ExemplarStore::new(100, 0);
    for i in 0..5 {
        s.add(&series("a"), ex("a", i as f64, i * 10)).expect("add");
        s.add(&series("b"), ex("b", i as f64, i * 10)).expect("add");
    }
    let only_b = [vec![
        Matcher::new(MatchOp::Equal, "__name__", "b").expect("m"),
    ]];
    let got = s.select(10, 30, &only_b);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].series, series("b"));
    assert_eq!(
        got[0].exemplars.iter().map(|e| e.ts).collect::<Vec<_>>(),
        vec![10, 20, 30]
    );
    // Two matcher sets: either matches.
    let either = [
        vec![Matcher::new(MatchOp::Equal, "__name__", "a").expect("m")],
        only_b[0].clone(),
    ];
    assert_eq!(s.select(0, 0, &either).len(), 2);
    assert!(s.select(41, 100, &either).is_empty());
}

#[test]
fn resize_keeps_the_newest() {
    let s = ExemplarStore::new(4, 0);
    for i in 0..6 {
        s.add(
            &series(if i % 2 == 0 { "a" } else { "b" }),
            ex("t", i as f64, i),
        )
        .expect("add");
    }
    assert_eq!(s.stats().in_storage, 4);
    assert_eq!(s.resize(2), 2);
    let ts: Vec<i64> = s.all().iter().map(|(_, e)| e.ts).collect();
    assert_eq!(ts, vec![4, 5]);
    assert_eq!(s.resize(10), 2);
    s.add(&series("a"), ex("t", 9.0, 9)).expect("add");
    assert_eq!(s.stats().in_storage, 3);
    assert_eq!(s.stats().max_exemplars, 10);
    assert_eq!(s.resize(0), 0);
    assert!(!s.enabled());
    assert_eq!(s.stats().series_in_storage, 0);
}

proptest! {
    /// In-order exemplars of a few series into a small ring: the ring holds exactly the
    /// newest `max` accepted ones, and every series' list is their time order.
    #[test]
    fn ring_holds_the_newest(max in 1usize..12, ops in proptest::collection::vec((0u8..4, 0i64..3), 1..80)) {
        let s = ExemplarStore::new(max as i64, 0);
        let mut clock = [0i64; 4];
        let mut accepted: Vec<(u8, i64)> = Vec::new();
        for (k, step) in ops {
            clock[k as usize] += step;
            let t = clock[k as usize];
            let e = ex(&format!("{k}-{t}"), 1.0, t);
            if s.add(&series(&format!("s{k}")), e) == Ok(true) {
                accepted.push((k, t));
            }
        }
        let keep = &accepted[accepted.len().saturating_sub(max)..];
        let mut want: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for &(k, t) in keep {
            want.entry(format!("s{k}")).or_default().push(t);
        }
        let got: std::collections::BTreeMap<String, Vec<i64>> = all_of(&s)
            .into_iter()
            .map(|se| (se.series.metric_name().to_string(), se.exemplars.iter().map(|e| e.ts).collect()))
            .collect();
        prop_assert_eq!(got, want);
        let st = s.stats();
        prop_assert_eq!(st.in_storage as usize, keep.len());
        prop_assert_eq!(st.series_in_storage as usize, s.select(i64::MIN, i64::MAX, &[vec![Matcher::new(MatchOp::Regex, "__name__", ".+").expect("re")]]).len());
    }
}
