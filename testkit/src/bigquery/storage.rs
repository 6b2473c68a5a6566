//! An in-process fake of the BigQuery Storage Read API (gRPC over HTTP/2: CreateReadSession,
//! ReadRows with offsets) that serves one Arrow table split into streams, with fault injection:
//! a gRPC status on CreateReadSession or ReadRows (before any row or after some rows of a
//! response stream), a stream that ends cleanly before its end (a short read), a stall longer
//! than the client's timeout, and slow responses.
//!
//! It is served with tonic's own server-side codec (`tonic::server::Grpc`) behind axum, so
//! framing, trailers and status codes are what a real gRPC server sends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions, write_message};
use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt, stream};
use gcp_bigquery_client::google::cloud::bigquery::storage::v1::{
    ArrowRecordBatch, ArrowSchema, CreateReadSessionRequest, ReadRowsRequest, ReadRowsResponse,
    ReadSession, ReadStream, StreamStats, read_rows_response, read_session, stream_stats,
};
use tonic::Status;

use super::Served;

const SERVICE: &str = "/google.cloud.bigquery.storage.v1.BigQueryRead";

/// Which call a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageOn {
    CreateSession,
    /// ReadRows of the stream with this index (0-based), whatever the offset.
    Stream(usize),
    /// ReadRows of any stream.
    AnyStream,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageFaultKind {
    /// The call fails with this status before any row.
    Status(tonic::Code, &'static str),
    /// The response stream sends this many rows, then fails with this status.
    StatusAfter(usize, tonic::Code, &'static str),
    /// The response stream sends this many rows, then ends cleanly (a short read).
    EndAfter(usize),
    /// The response stream sends this many rows, then sends nothing more for this long.
    StallAfter(usize, Duration),
    /// The HTTP/2 stream is cut after this many DATA frames (a frame holds about one response)
    /// with no gRPC status: reset (RST_STREAM), as when the server's process or a proxy drops
    /// the call, or ended cleanly without trailers, as when a proxy truncates it.
    Cut { frames: usize, reset: bool },
}

#[derive(Debug, Clone)]
pub struct StorageFault {
    pub on: StorageOn,
    pub kind: StorageFaultKind,
    /// How many times it fires (u32::MAX: always).
    pub times: u32,
}

#[derive(Debug, Default)]
pub struct StorageState {
    /// The whole table; each stream serves a contiguous slice of it.
    pub table: Option<RecordBatch>,
    /// Rows per ReadRows response.
    pub rows_per_response: usize,
    /// Report `stats.progress` in each response (real BigQuery does).
    pub report_progress: bool,
    /// Scale the reported progress by this (default 1): below 1, a stream ends with its
    /// progress short of 1, as a filtered stream whose last rows the filter dropped may.
    pub progress_scale: Option<f64>,
    pub faults: Vec<StorageFault>,
    /// Every ReadRows response takes this long.
    pub response_delay: Duration,

    // What the fake saw.
    pub sessions: Vec<CreateReadSessionRequest>,
    /// (stream index, offset) of every ReadRows call.
    pub reads: Vec<(usize, i64)>,
    /// Rows sent, over all streams and calls.
    pub rows_sent: usize,
    /// (method, `authorization`, `x-goog-request-params`) metadata of every call.
    pub metadata: Vec<(&'static str, String, String)>,
    /// Set by a ReadRows call that took a `Cut` fault: (frames, reset).
    pub cut_pending: Option<(usize, bool)>,
}

pub type SharedStorage = Arc<Mutex<StorageState>>;

/// The Storage Read fake; its `url` is the connection's `storage_endpoint:`.
pub type FakeStorageRead = Served<StorageState>;

impl FakeStorageRead {
    pub async fn start_grpc(state: StorageState) -> FakeStorageRead {
        Served::start(state, |state| {
            Router::new()
                .route(
                    &format!("{SERVICE}/CreateReadSession"),
                    post(create_session),
                )
                .route(&format!("{SERVICE}/ReadRows"), post(read_rows))
                .with_state(state)
        })
        .await
    }
}

fn record_metadata<T>(state: &mut StorageState, method: &'static str, request: &tonic::Request<T>) {
    let get = |key: &str| {
        request
            .metadata()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    state
        .metadata
        .push((method, get("authorization"), get("x-goog-request-params")));
}

fn take_fault(state: &mut StorageState, on: StorageOn) -> Option<StorageFaultKind> {
    let i = state.faults.iter().position(|f| {
        f.times > 0
            && (f.on == on || (f.on == StorageOn::AnyStream && matches!(on, StorageOn::Stream(_))))
    })?;
    let f = &mut state.faults[i];
    if f.times != u32::MAX {
        f.times -= 1;
    }
    Some(f.kind.clone())
}

/// The table's schema as the Storage Read API sends it (an IPC schema message).
fn ipc_schema(batch: &RecordBatch) -> Vec<u8> {
    let generator = IpcDataGenerator::default();
    let options = IpcWriteOptions::default();
    let mut tracker = DictionaryTracker::new(false);
    let message = generator.schema_to_bytes_with_dictionary_tracker(
        batch.schema_ref(),
        &mut tracker,
        &options,
    );
    let mut out = Vec::new();
    write_message(&mut out, message, &options).expect("IPC schema");
    out
}

/// One record batch as an IPC message (no schema).
fn ipc_batch(batch: &RecordBatch) -> Vec<u8> {
    let generator = IpcDataGenerator::default();
    let options = IpcWriteOptions::default();
    let mut tracker = DictionaryTracker::new(false);
    let (_, encoded) = generator
        .encode(batch, &mut tracker, &options, &mut Default::default())
        .expect("IPC batch");
    let mut out = Vec::new();
    write_message(&mut out, encoded, &options).expect("IPC batch");
    out
}

/// The slice `[start, end)` of the table that stream `index` of `count` serves.
fn stream_range(rows: usize, index: usize, count: usize) -> (usize, usize) {
    let per = rows.div_ceil(count.max(1));
    ((index * per).min(rows), ((index + 1) * per).min(rows))
}

const STREAM_PREFIX: &str = "projects/p/locations/us/sessions/fake/streams/";

fn parse_stream(name: &str) -> Option<(usize, usize)> {
    let (index, count) = name.strip_prefix(STREAM_PREFIX)?.split_once("-of-")?;
    Some((index.parse().ok()?, count.parse().ok()?))
}

async fn create_session(State(state): State<SharedStorage>, request: Request) -> Response {
    let service = tower::service_fn(move |req: tonic::Request<CreateReadSessionRequest>| {
        let state = state.clone();
        async move {
            let mut s = state.lock().expect("state");
            record_metadata(&mut s, "CreateReadSession", &req);
            let req = req.into_inner();
            s.sessions.push(req.clone());
            if let Some(StorageFaultKind::Status(code, message)) =
                take_fault(&mut s, StorageOn::CreateSession)
            {
                return Err(Status::new(code, message));
            }
            let table = s
                .table
                .clone()
                .ok_or_else(|| Status::not_found("the fake has no table"))?;
            let count = usize::try_from(req.max_stream_count.max(1)).unwrap_or(1);
            let asked = req.read_session.unwrap_or_default();
            let streams = (0..count)
                .map(|i| ReadStream {
                    name: format!("{STREAM_PREFIX}{i}-of-{count}"),
                })
                .collect();
            Ok(tonic::Response::new(ReadSession {
                name: "projects/p/locations/us/sessions/fake".into(),
                table: asked.table,
                data_format: asked.data_format,
                read_options: asked.read_options,
                streams,
                estimated_row_count: table.num_rows() as i64,
                schema: Some(read_session::Schema::ArrowSchema(ArrowSchema {
                    serialized_schema: ipc_schema(&table),
                })),
                ..ReadSession::default()
            }))
        }
    });
    tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
        .unary(service, request)
        .await
        .map(Body::new)
}

type Responses = BoxStream<'static, Result<ReadRowsResponse, Status>>;

async fn read_rows(State(state): State<SharedStorage>, request: Request) -> Response {
    let shared = state.clone();
    let service = tower::service_fn(move |req: tonic::Request<ReadRowsRequest>| {
        let state = state.clone();
        async move {
            record_metadata(&mut state.lock().expect("state"), "ReadRows", &req);
            read_rows_stream(&state, req.into_inner()).map(tonic::Response::new)
        }
    });
    let response = tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
        .server_streaming(service, request)
        .await;
    let Some((frames, reset)) = shared.lock().expect("state").cut_pending.take() else {
        return response.map(Body::new);
    };
    let (parts, body) = response.into_parts();
    // The data frames only: the trailers (the gRPC status) never go out.
    let data = http_body_util::BodyExt::into_data_stream(body)
        .take(frames)
        .map_err(|status| std::io::Error::other(status.to_string()));
    let end = stream::once(async move {
        // Let the frames reach the client first: a reset drops what is still queued.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "stream reset by the fake",
        ))
    })
    .filter(move |_| futures::future::ready(reset));
    Response::from_parts(parts, Body::from_stream(data.chain(end)))
}

fn read_rows_stream(state: &SharedStorage, req: ReadRowsRequest) -> Result<Responses, Status> {
    let (index, count) = parse_stream(&req.read_stream)
        .ok_or_else(|| Status::not_found(format!("no stream {:?}", req.read_stream)))?;
    let mut s = state.lock().expect("state");
    s.reads.push((index, req.offset));
    let fault = take_fault(&mut s, StorageOn::Stream(index));
    if let Some(StorageFaultKind::Status(code, message)) = &fault {
        return Err(Status::new(*code, *message));
    }
    s.cut_pending = match fault {
        Some(StorageFaultKind::Cut { frames, reset }) => Some((frames, reset)),
        _ => None,
    };
    let table = s
        .table
        .clone()
        .ok_or_else(|| Status::not_found("the fake has no table"))?;
    let (start, end) = stream_range(table.num_rows(), index, count);
    let offset = usize::try_from(req.offset).map_err(|_| Status::invalid_argument("offset"))?;
    if offset > end - start {
        return Err(Status::out_of_range(format!(
            "offset {offset} is past the stream's {} rows",
            end - start
        )));
    }
    let per = s.rows_per_response.max(1);
    let (progress, delay, shared) = (s.report_progress, s.response_delay, state.clone());
    let scale = s.progress_scale.unwrap_or(1.0);
    drop(s);

    // The rows this call may send before its fault (if any) cuts in.
    let limit = match &fault {
        Some(
            StorageFaultKind::StatusAfter(n, ..)
            | StorageFaultKind::EndAfter(n)
            | StorageFaultKind::StallAfter(n, _),
        ) => (*n).min(end - start - offset),
        _ => end - start - offset,
    };
    let total = (end - start) as f64;
    let responses = (0..limit.div_ceil(per)).map(move |k| {
        let from = offset + k * per;
        let n = per.min(offset + limit - from);
        let batch = table.slice(start + from, n);
        ReadRowsResponse {
            row_count: n as i64,
            stats: progress.then(|| StreamStats {
                progress: Some(stream_stats::Progress {
                    at_response_start: scale * from as f64 / total,
                    at_response_end: scale * (from + n) as f64 / total,
                }),
            }),
            rows: Some(read_rows_response::Rows::ArrowRecordBatch(
                ArrowRecordBatch {
                    serialized_record_batch: ipc_batch(&batch),
                    ..ArrowRecordBatch::default()
                },
            )),
            ..ReadRowsResponse::default()
        }
    });
    let rows = stream::iter(responses).then(move |r| {
        let shared = shared.clone();
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            shared.lock().expect("state").rows_sent += usize::try_from(r.row_count).unwrap_or(0);
            Ok(r)
        }
    });
    let tail: Responses = match fault {
        Some(StorageFaultKind::StatusAfter(_, code, message)) => {
            stream::once(async move { Err(Status::new(code, message)) }).boxed()
        }
        Some(StorageFaultKind::StallAfter(_, pause)) => stream::once(async move {
            tokio::time::sleep(pause).await;
            Err(Status::unavailable("the fake stalled"))
        })
        .boxed(),
        _ => stream::empty().boxed(),
    };
    Ok(rows.chain(tail).boxed())
}
