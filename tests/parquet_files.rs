//! Block files are plain Parquet: the `parquet` crate's own reader (and pyarrow, when
//! Python has it) opens them without Strata and finds the expected rows and columns.

mod common;

use std::process::Command;

use common::{Server, post_write, write_body};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use strata_storage::arrow::array::{TimestampMillisecondArray, UInt32Array};

const T0: i64 = 1_700_000_000_000;

#[test]
fn blocks_open_with_plain_parquet_readers() {
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path(), &[]);
    // 30 series × 4h at 15s: enough for the head to cut a block while running.
    for h in 0..16 {
        let body = write_body(0..30, T0 + h * 900_000, 60, 15_000);
        assert_eq!(post_write(server.port, body).expect("post"), 204);
    }
    server.stop();

    let mut samples = 0usize;
    let mut series = 0usize;
    let mut dirs = Vec::new();
    for e in std::fs::read_dir(dir.path().join("blocks"))
        .expect("blocks")
        .flatten()
    {
        let p = e.path();
        assert!(p.join("meta.json").exists());
        let f = std::fs::File::open(p.join("samples.parquet")).expect("samples");
        let r = ParquetRecordBatchReaderBuilder::try_new(f)
            .expect("parquet")
            .build()
            .expect("reader");
        let mut last: Option<(u32, i64)> = None;
        for b in r {
            let b = b.expect("batch");
            assert_eq!(b.schema().field(0).name(), "series_id");
            assert_eq!(b.schema().field(1).name(), "timestamp");
            let schema = b.schema();
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(
                names[2..],
                [
                    "value_mantissa",
                    "value_shift",
                    "value_exponent",
                    "value_float"
                ]
            );
            let ids = b
                .column(0)
                .as_any()
                .downcast_ref::<UInt32Array>()
                .expect("series_id is u32");
            let ts = b
                .column(1)
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .expect("timestamp in ms");
            for i in 0..b.num_rows() {
                let key = (ids.value(i), ts.value(i));
                assert!(
                    last.is_none_or(|l| l < key),
                    "rows sorted by (series_id, timestamp)"
                );
                last = Some(key);
            }
            samples += b.num_rows();
        }
        let f = std::fs::File::open(p.join("series.parquet")).expect("series");
        let r = ParquetRecordBatchReaderBuilder::try_new(f)
            .expect("parquet")
            .build()
            .expect("reader");
        for b in r {
            let b = b.expect("batch");
            assert!(b.schema().column_with_name("labels").is_some());
            assert!(b.schema().column_with_name("metric").is_some());
            series += b.num_rows();
        }
        dirs.push(p);
    }
    assert_eq!(samples, 30 * 16 * 60);
    assert!(series >= 30);
    assert!(!dirs.is_empty());

    // pyarrow, the reader most data tools use, when it is installed.
    let probe = Command::new("python3")
        .args(["-c", "import pyarrow.parquet"])
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        eprintln!("skipping the pyarrow check: python3 with pyarrow is not installed here");
        return;
    }
    let script = format!(
        "import pyarrow.parquet as pq, glob\n\
         t = sum(pq.read_table(f).num_rows for f in glob.glob('{0}/blocks/*/samples.parquet'))\n\
         s = pq.read_table(glob.glob('{0}/blocks/*/series.parquet')[0]).to_pylist()[0]\n\
         assert s['metric'].startswith('test_metric_'), s\n\
         assert dict(s['labels'])['job'] == 'crash', s\n\
         import pyarrow as pa, os\n\
         m = lambda r: r['value_mantissa'] * 2 ** r['value_shift']\n\
         dec = lambda r: r['value_float'] if r['value_exponent'] == -128 else (m(r) * 10 ** r['value_exponent'] if r['value_exponent'] >= 0 else m(r) / 10 ** -r['value_exponent'])\n\
         checked = 0\n\
         want = lambda inst, r: inst[r['series_id']] * 1000 + (r['timestamp'] - {1}) % 900000 // 15000\n\
         for d in glob.glob('{0}/blocks/*/'): \
         inst = {{x['series_id']: int(dict(x['labels'])['instance'][5:]) for x in pq.read_table(d + 'series.parquet').to_pylist()}}; \
         v = pq.read_table(d + 'samples.parquet'); \
         v = v.set_column(1, 'timestamp', v['timestamp'].cast(pa.int64())).to_pylist(); \
         bad = [(r, want(inst, r)) for r in v if dec(r) != want(inst, r)]; \
         assert not bad, bad[:3]; \
         checked += len(v)\n\
         assert checked == t, (checked, t)\n\
         print(t)",
        dir.path().display(),
        T0
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        (30 * 16 * 60).to_string()
    );
}
