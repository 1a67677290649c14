//! The `SAMPLES` answer: one snappy-compressed `ReadResponse` holding every selected
//! series' float samples and native histograms, a result per query in the queries' order.

use prost::Message;

use super::ReadError;
use super::proto::{QueryResult, ReadResponse, Sample, TimeSeries};
use super::select::Selected;

/// `selected` as a snappy-compressed `ReadResponse`.
pub(crate) fn encode(selected: Vec<Vec<Selected>>) -> Result<Vec<u8>, ReadError> {
    let results = selected
        .into_iter()
        .map(|series| QueryResult {
            timeseries: series
                .into_iter()
                .map(|s| TimeSeries {
                    labels: s.labels,
                    samples: s
                        .samples
                        .into_iter()
                        .map(|(timestamp, value)| Sample { value, timestamp })
                        .collect(),
                    histograms: s
                        .histograms
                        .iter()
                        .map(|(t, h)| strata_ingest::histogram_proto::Histogram::from_float(*t, h))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let raw = ReadResponse { results }.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .map_err(|e| ReadError::Encode(e.to_string()))
}
