use super::*;
use crate::wal::{WalPosition, WalTail};

fn samples(n: u32) -> Vec<u8> {
    let mut b = Vec::new();
    let s: Vec<(u32, i64, f64)> = (0..n).map(|i| (i, i as i64 * 10, i as f64)).collect();
    encode_samples(&mut b, &s);
    b
}

/// A WAL with one segment holding two sample records; returns the dir and the segment path.
fn two_record_segment() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().expect("tmp");
    let (w, _) = Wal::open(d.path(), false, |_| {}).expect("open");
    w.write(&samples(3)).expect("write");
    w.write(&samples(5)).expect("write");
    let seg = d.path().join(segment_name(
        w.writer
            .lock()
            .as_ref()
            .map(|w| w.segment)
            .expect("writable"),
    ));
    (d, seg)
}

fn replay(dir: &Path) -> (Vec<Record>, ReplayStats) {
    let mut recs = Vec::new();
    let (_w, stats) = Wal::open(dir, false, |r| recs.push(r)).expect("open");
    (recs, stats)
}

#[test]
fn write_replay_and_checkpoint() {
    let d = tempfile::tempdir().expect("tmp");
    {
        let (w, _) = Wal::open(d.path(), false, |_| {}).expect("open");
        w.write(&samples(3)).expect("write");
        w.write(&samples(4)).expect("write");
        w.sync().expect("sync");
    }
    let (recs, st) = replay(d.path());
    assert_eq!(recs.len(), 2);
    assert!(st.corruptions.is_empty());
    {
        let (w, _) = Wal::open(d.path(), false, |_| {}).expect("open");
        let upto = w.rotate().expect("rotate");
        w.checkpoint(upto, |o| o.write_all(&samples(1)))
            .expect("checkpoint");
        w.write(&samples(2)).expect("write");
    }
    let (recs, _) = replay(d.path());
    assert_eq!(recs.len(), 2, "checkpoint + one segment record: {recs:?}");
}

#[test]
fn torn_tail_is_truncated_and_rest_kept() {
    let (d, seg) = two_record_segment();
    let len = fs::metadata(&seg).expect("stat").len();
    let f = OpenOptions::new().write(true).open(&seg).expect("open");
    f.set_len(len - 7).expect("truncate");
    let (recs, st) = replay(d.path());
    assert_eq!(recs.len(), 1);
    assert_eq!(st.corruptions.len(), 1);
    // The tail was cut: a second replay is clean.
    let (recs, st) = replay(d.path());
    assert_eq!(recs.len(), 1);
    assert!(st.corruptions.is_empty(), "{:?}", st.corruptions);
}

#[test]
fn flipped_byte_is_detected() {
    let (d, seg) = two_record_segment();
    let mut bytes = fs::read(&seg).expect("read");
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    fs::write(&seg, bytes).expect("write");
    let (recs, st) = replay(d.path());
    assert_eq!(recs.len(), 1);
    assert!(
        st.corruptions[0].contains("checksum"),
        "{:?}",
        st.corruptions
    );
}

#[test]
fn lazy_records_wait_for_the_long_interval_and_replay_alike() {
    let d = tempfile::tempdir().expect("tmp");
    {
        let (w, _) = Wal::open(d.path(), false, |_| {}).expect("open");
        assert!(!w.sync_due(true), "nothing written");
        w.write_lazy(&samples(3)).expect("write");
        assert!(
            !w.sync_due(false),
            "lazy records alone do not make a group commit due"
        );
        assert!(w.sync_due(true));
        w.write(&samples(2)).expect("write");
        assert!(w.sync_due(false), "an acknowledged write does");
        let before = w.fsyncs.load(Ordering::Relaxed);
        w.sync().expect("sync");
        assert_eq!(w.fsyncs.load(Ordering::Relaxed), before + 1);
        assert!(!w.sync_due(true), "synced");
    }
    let (recs, stats) = replay(d.path());
    assert!(stats.corruptions.is_empty());
    assert_eq!(recs.len(), 2, "both records replay");
}

/// fsyncgate: after one failed fsync the written data may be gone from the page cache
/// while a later fsync succeeds. The failure is sticky: `fsync_failed` stays set (the
/// binary exits with status 3 on it) however many syncs succeed afterwards.
#[test]
fn a_failed_fsync_is_never_forgotten() {
    let d = tempfile::tempdir().expect("tmp");
    let (w, _) = Wal::open(d.path(), false, |_| {}).expect("open");
    w.write(&samples(3)).expect("write");
    w.sync().expect("a healthy sync");
    assert!(!w.fsync_failed());
    w.write(&samples(2)).expect("write");
    FAIL_SYNC.store(true, std::sync::atomic::Ordering::Relaxed);
    let err = w.sync().expect_err("EIO");
    assert!(err.to_string().contains("fsync"), "{err}");
    FAIL_SYNC.store(false, std::sync::atomic::Ordering::Relaxed);
    w.write(&samples(1)).expect("write");
    w.sync().expect("the disk answers again");
    assert!(w.fsync_failed(), "sticky after a later success");
    // Rotation syncs the old segment: a failure there is remembered too.
    let d2 = tempfile::tempdir().expect("tmp");
    let (w2, _) = Wal::open(d2.path(), false, |_| {}).expect("open");
    w2.write(&samples(1)).expect("write");
    FAIL_SYNC.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(w2.rotate().is_err());
    FAIL_SYNC.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(w2.fsync_failed());
}

/// Writes one record of `n` samples to the current segment and closes it: returns its
/// number and size on disk.
fn closed_segment(w: &Wal, n: u32) -> (u64, u64) {
    w.write(&samples(n)).expect("write");
    let upto = w.rotate().expect("rotate");
    let seg = upto - 1;
    let size = fs::metadata(w.dir().join(segment_name(seg)))
        .expect("stat")
        .len();
    (seg, size)
}

/// Numbers of the segments in the WAL directory, ascending.
fn segments_on_disk(w: &Wal) -> Vec<u64> {
    list(w.dir())
        .expect("list")
        .0
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// Bytes of the segments below `upto` (those a checkpoint may delete).
fn bytes_below(w: &Wal, upto: u64) -> u64 {
    list(w.dir())
        .expect("list")
        .0
        .iter()
        .filter(|(n, _)| *n < upto)
        .map(|(_, p)| fs::metadata(p).expect("stat").len())
        .sum()
}

/// Reads `tail` to the end of the WAL: the number of records.
fn drain(tail: &mut WalTail) -> usize {
    let mut records = 0;
    loop {
        let before = tail.position();
        let r = tail.read(1 << 20).expect("read");
        records += r.records.len();
        if r.records.is_empty() && tail.position() == before {
            return records;
        }
    }
}

#[test]
fn the_keep_bound_defaults_to_keep_max_bytes() {
    let d = tempfile::tempdir().expect("tmp");
    let (w, _) = Wal::open(d.path(), false, |_| {}).expect("open");
    assert_eq!(w.keep_max_bytes.load(Ordering::Relaxed), KEEP_MAX_BYTES);
    assert_eq!(KEEP_MAX_BYTES, 1 << 30, "the production bound is 1 GiB");
}

/// A reader pins segment 0 and falls behind: checkpoints keep the newest pinned segments
/// that fit in the bound and delete the older ones; a tail at the pinned position counts
/// those as skipped; `keep_from(None)` releases the rest.
#[test]
fn checkpoints_keep_pinned_segments_up_to_the_bound() {
    let d = tempfile::tempdir().expect("tmp");
    let (w, _) = Wal::open(d.path(), false, |_| {}).expect("open");
    let (mut tail, _) = WalTail::open(d.path(), WalPosition::default()).expect("tail");
    w.keep_from(Some(0));
    let sizes: Vec<(u64, u64)> = (0..8).map(|_| closed_segment(&w, 50)).collect();
    assert_eq!(
        sizes.iter().map(|s| s.0).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    let upto = 8;
    // Room for the newest three and a bit, not for four.
    let three: u64 = sizes[5..].iter().map(|s| s.1).sum();
    let bound = three + sizes[4].1 / 2;
    w.set_keep_max_bytes(bound);
    w.checkpoint(upto, |o| o.write_all(&samples(1)))
        .expect("checkpoint");
    let below: Vec<u64> = segments_on_disk(&w)
        .into_iter()
        .filter(|n| *n < upto)
        .collect();
    assert_eq!(
        below,
        vec![5, 6, 7],
        "the newest pinned segments within the bound"
    );
    assert!(bytes_below(&w, upto) <= bound);
    // The tail was at segment 0: it skips 0..5, counts them, and reads on from 5.
    let r = tail.read(1 << 20).expect("read");
    assert_eq!(tail.skipped_segments, 5);
    assert_eq!(r.records.len(), 1, "segment 5's record: {:?}", r.records);
    assert_eq!(tail.position().segment, 5);
    // At the default bound (1 GiB) every pinned segment stays.
    w.set_keep_max_bytes(KEEP_MAX_BYTES);
    let more: Vec<(u64, u64)> = (0..3).map(|_| closed_segment(&w, 50)).collect();
    let upto2 = more[2].0 + 1;
    w.checkpoint(upto2, |o| o.write_all(&samples(1)))
        .expect("checkpoint");
    let mut want = vec![5, 6, 7];
    want.extend(more.iter().map(|s| s.0));
    assert_eq!(
        segments_on_disk(&w)
            .into_iter()
            .filter(|n| *n < upto2)
            .collect::<Vec<_>>(),
        want
    );
    // Released: the next checkpoint deletes every segment below it.
    w.keep_from(None);
    let upto3 = closed_segment(&w, 50).0 + 1;
    w.checkpoint(upto3, |o| o.write_all(&samples(1)))
        .expect("checkpoint");
    assert_eq!(
        segments_on_disk(&w),
        vec![upto3],
        "only the live segment is left"
    );
    assert_eq!(bytes_below(&w, upto3), 0);
}

/// Only segments from the pinned one on are kept, however much room the bound leaves.
#[test]
fn segments_before_the_pin_go_whatever_the_bound() {
    let d = tempfile::tempdir().expect("tmp");
    let (w, _) = Wal::open(d.path(), false, |_| {}).expect("open");
    for _ in 0..4 {
        closed_segment(&w, 20);
    }
    w.keep_from(Some(2));
    let upto = 4;
    w.checkpoint(upto, |o| o.write_all(&samples(1)))
        .expect("checkpoint");
    assert_eq!(segments_on_disk(&w), vec![2, 3, upto]);
}

/// A pinned segment too large for what is left of the bound ends the kept run: an older,
/// smaller one that would fit goes too, so a tail never finds a hole between kept
/// segments (it would pass it without counting the lost segment).
#[test]
fn kept_segments_are_a_run_without_holes() {
    let d = tempfile::tempdir().expect("tmp");
    let (w, _) = Wal::open(d.path(), false, |_| {}).expect("open");
    let (mut tail, _) = WalTail::open(d.path(), WalPosition::default()).expect("tail");
    w.keep_from(Some(0));
    let small0 = closed_segment(&w, 10);
    let small1 = closed_segment(&w, 10);
    let big = closed_segment(&w, 2000);
    let newest = closed_segment(&w, 10);
    assert!(big.1 > small0.1 + small1.1, "{big:?} {small0:?} {small1:?}");
    let upto = newest.0 + 1;
    // The newest and both small ones would fit; the big one does not.
    w.set_keep_max_bytes(newest.1 + small0.1 + small1.1);
    w.checkpoint(upto, |o| o.write_all(&samples(1)))
        .expect("checkpoint");
    assert_eq!(segments_on_disk(&w), vec![newest.0, upto]);
    assert!(bytes_below(&w, upto) <= newest.1 + small0.1 + small1.1);
    assert_eq!(drain(&mut tail), 1, "the newest segment's record");
    assert_eq!(tail.skipped_segments, 3);
}

/// A tail that finds a hole after a segment it read (segments deleted by another
/// writer's rules, or by hand) counts the missing ones.
#[test]
fn a_tail_counts_a_hole_after_the_segment_it_read() {
    let d = tempfile::tempdir().expect("tmp");
    let (w, _) = Wal::open(d.path(), false, |_| {}).expect("open");
    let (mut tail, _) = WalTail::open(d.path(), WalPosition::default()).expect("tail");
    for _ in 0..4 {
        closed_segment(&w, 10);
    }
    fs::remove_file(d.path().join(segment_name(1))).expect("rm");
    fs::remove_file(d.path().join(segment_name(2))).expect("rm");
    assert_eq!(drain(&mut tail), 2, "segments 0 and 3");
    assert_eq!(tail.skipped_segments, 2);
}
