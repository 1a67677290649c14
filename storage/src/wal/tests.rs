use super::*;

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
