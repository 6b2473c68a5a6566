//! The Storage Read path: one read session (selected fields, row restriction, Arrow format,
//! up to N streams), the streams read in parallel into one bounded channel.
//!
//! - The output schema is the same as the REST path's for the same columns (from the table's
//!   metadata); Arrow batches from the server are cast to it when their types differ.
//! - ReadRows failures that are transient are retried with backoff, resuming the stream at the
//!   offset of the first row not yet read.
//! - Each response's row count must match the rows decoded from it.
//! - A stream that ends cleanly while the server's own progress (`at_response_end`) says rows
//!   remain is resumed at the offset. Without a row restriction it fails the table if it stays
//!   short; with one (where progress also counts filtered-out rows) an immediate clean end of
//!   the resumed call confirms the end.
//! - A stream silent for longer than the connection's `timeout_ms` is resumed at the offset.
//! - RECORD and REPEATED columns are not read here: select them through a query (REST) with
//!   `TO_JSON_STRING`, or read them with `read_api: rest`.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, AsArray, StringArray};
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::datatypes::{DataType, IntervalMonthDayNanoType};
use arrow::ipc::reader::StreamDecoder;
use arrow::record_batch::RecordBatch;
use gcp_bigquery_client::google::cloud::bigquery::storage::v1::{
    ArrowSerializationOptions, CreateReadSessionRequest, DataFormat, ReadRowsRequest, ReadSession,
    big_query_read_client::BigQueryReadClient, read_rows_response, read_session,
};
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use tokio::sync::mpsc;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::client::Bq;
use super::decode::ResultSchema;
use super::error::BigQueryError;
use super::query::{ReadPlan, TableRef};
use super::rest::into_stream;
use super::retry::{Failure, classify, classify_status, retry};
use crate::{BatchStream, OperatorError};

/// Largest gRPC message accepted (a ReadRows response is at most ~128 MiB).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;
/// Batches buffered between the stream readers and the consumer.
const CHANNEL_CAPACITY: usize = 2;

/// Decodes the Arrow IPC payloads of a read session: the serialized schema once, then each
/// response's serialized record batch.
pub struct IpcDecoder {
    decoder: StreamDecoder,
    schema: SchemaRef,
}

/// The length of the first IPC message of `bytes` (continuation marker, length, metadata; a
/// schema message has no body). Anything after it (an end-of-stream marker that some servers
/// append) is ignored.
fn first_message_len(bytes: &[u8]) -> usize {
    let word = |i: usize| -> Option<u32> {
        bytes
            .get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let len = match word(0) {
        Some(0xFFFF_FFFF) => word(4).map(|l| 8 + l as usize),
        Some(l) => Some(4 + l as usize),
        None => None,
    };
    len.unwrap_or(bytes.len()).min(bytes.len())
}

impl IpcDecoder {
    /// Reads the session's serialized Arrow schema.
    pub fn new(serialized_schema: &[u8]) -> Result<Self, BigQueryError> {
        let first = &serialized_schema[..first_message_len(serialized_schema)];
        let schema = arrow::ipc::convert::try_schema_from_ipc_buffer(first)
            .map_err(|e| BigQueryError::arrow("read session schema", e))?;
        // The decoder keeps the schema message pending until the first batch arrives (its empty
        // body is only consumed with more input); batches decode against it.
        let mut decoder = StreamDecoder::new();
        let mut buffer = Buffer::from(first.to_vec());
        decoder
            .decode(&mut buffer)
            .map_err(|e| BigQueryError::arrow("read session schema", e))?;
        Ok(IpcDecoder {
            decoder,
            schema: Arc::new(schema),
        })
    }

    /// The schema the server writes.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Decodes one serialized record batch message (zero-copy on the buffer).
    pub fn decode(&mut self, serialized_batch: Vec<u8>) -> Result<Vec<RecordBatch>, BigQueryError> {
        let mut buffer = Buffer::from_vec(serialized_batch);
        let mut out = Vec::with_capacity(1);
        while let Some(batch) = self
            .decoder
            .decode(&mut buffer)
            .map_err(|e| BigQueryError::arrow("record batch", e))?
        {
            out.push(batch);
        }
        Ok(out)
    }
}

/// Casts a server batch to the canonical schema (by column name).
pub fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, BigQueryError> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = batch.column_by_name(field.name()).ok_or_else(|| {
            BigQueryError::protocol(
                "ReadRows",
                format!("the batch has no column {:?}", field.name()),
            )
        })?;
        if column.data_type() == field.data_type() {
            columns.push(column.clone());
        } else if let (DataType::Utf8, Some(intervals)) = (
            field.data_type(),
            column.as_primitive_opt::<IntervalMonthDayNanoType>(),
        ) {
            // INTERVAL arrives as Arrow month-day-nano; REST sends BigQuery's canonical text,
            // and both read paths must load the same value.
            let text: StringArray = intervals
                .iter()
                .map(|v| v.map(|v| interval_text(v.months, v.days, v.nanoseconds)))
                .collect();
            columns.push(Arc::new(text));
        } else {
            columns.push(
                arrow::compute::cast(column, field.data_type())
                    .map_err(|e| BigQueryError::arrow(format!("column {:?}", field.name()), e))?,
            );
        }
    }
    RecordBatch::try_new(target.clone(), columns).map_err(|e| BigQueryError::arrow("batch", e))
}

/// BigQuery's canonical INTERVAL text, `[-]Y-M [-]D [-]H:M:S[.F]` (what the REST API sends):
/// no zero padding, the fraction without trailing zeros.
pub fn interval_text(months: i32, days: i32, nanos: i64) -> String {
    let sign = |negative: bool| if negative { "-" } else { "" };
    let m = months.unsigned_abs();
    let n = nanos.unsigned_abs();
    let seconds = n / 1_000_000_000;
    let fraction = n % 1_000_000_000;
    let mut out = format!(
        "{}{}-{} {days} {}{}:{}:{}",
        sign(months < 0),
        m / 12,
        m % 12,
        sign(nanos < 0),
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    );
    if fraction != 0 {
        let digits = format!("{fraction:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

#[derive(Clone)]
struct ReadClient {
    channel: Channel,
    bq: Bq,
}

impl ReadClient {
    fn new(bq: &Bq) -> Result<Self, BigQueryError> {
        let url = bq.conn.grpc_endpoint.clone();
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| BigQueryError::config(format!("bad Storage Read endpoint {url:?}: {e}")))?
            .connect_timeout(Duration::from_secs(20))
            .tcp_keepalive(Some(Duration::from_secs(60)))
            .http2_keep_alive_interval(Duration::from_secs(30));
        if url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| BigQueryError::config(format!("TLS for {url}: {e}")))?;
        }
        Ok(ReadClient {
            channel: endpoint.connect_lazy(),
            bq: bq.clone(),
        })
    }

    fn client(&self) -> BigQueryReadClient<Channel> {
        BigQueryReadClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    /// A request with the bearer token and the routing header real BigQuery requires.
    async fn request<T>(
        &self,
        message: T,
        routing: &str,
    ) -> Result<tonic::Request<T>, BigQueryError> {
        let token = self
            .bq
            .auth
            .access_token()
            .await
            .map_err(|e| BigQueryError::Auth(e.to_string()))?;
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| BigQueryError::Auth("the access token is not a valid header".into()))?;
        metadata.insert("authorization", bearer);
        let routing = routing
            .parse()
            .map_err(|_| BigQueryError::config(format!("bad routing header {routing:?}")))?;
        metadata.insert("x-goog-request-params", routing);
        Ok(request)
    }
}

fn nested(field: &TableFieldSchema) -> bool {
    matches!(field.r#type, FieldType::Record | FieldType::Struct)
        || field
            .mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("REPEATED"))
}

/// The canonical schema of the selected columns, from the table's metadata.
async fn table_schema(
    bq: &Bq,
    table: &TableRef,
    columns: &[String],
) -> Result<ResultSchema, BigQueryError> {
    let meta = retry(&bq.conn.retry, "tables.get", |_| async {
        bq.client
            .table()
            .get(&table.project, &table.dataset, &table.table, None)
            .await
            .map_err(|e| classify(&e))
    })
    .await?;
    let fields = meta.schema.fields.unwrap_or_default();
    let mut selected = Vec::with_capacity(columns.len());
    for c in columns {
        let f = fields.iter().find(|f| &f.name == c).ok_or_else(|| {
            BigQueryError::config(format!(
                "table {} has no column {c:?}; its columns: {}",
                table.sql(),
                fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if nested(f) {
            return Err(BigQueryError::UnsupportedType {
                column: c.clone(),
                ty: "RECORD/REPEATED".into(),
                hint:
                    "the Storage Read path reads scalar columns; use read_api: rest with a query \
                       (TO_JSON_STRING) for nested data"
                        .into(),
            });
        }
        selected.push(f.clone());
    }
    ResultSchema::new(&selected)
}

/// The schema of a Storage Read plan (used by `explain` too).
pub(crate) async fn plan_schema(bq: &Bq, plan: &ReadPlan) -> Result<SchemaRef, BigQueryError> {
    let table = plan
        .table
        .as_ref()
        .ok_or_else(|| BigQueryError::config("read_api: storage needs `table:`"))?;
    Ok(table_schema(bq, table, &plan.columns).await?.arrow)
}

/// Creates the read session and streams its rows.
pub async fn open(bq: Bq, plan: ReadPlan) -> Result<(SchemaRef, BatchStream), BigQueryError> {
    let table = plan
        .table
        .clone()
        .ok_or_else(|| BigQueryError::config("read_api: storage needs `table:`"))?;
    let target = table_schema(&bq, &table, &plan.columns).await?.arrow;
    let client = ReadClient::new(&bq)?;
    let parent = format!("projects/{}", bq.conn.billing_project);
    let request = CreateReadSessionRequest {
        parent,
        read_session: Some(ReadSession {
            table: table.path(),
            data_format: DataFormat::Arrow as i32,
            read_options: Some(read_session::TableReadOptions {
                selected_fields: plan.columns.clone(),
                row_restriction: plan.row_restriction.clone().unwrap_or_default(),
                output_format_serialization_options: Some(
                    read_session::table_read_options::OutputFormatSerializationOptions::ArrowSerializationOptions(
                        ArrowSerializationOptions { buffer_compression: 0 },
                    ),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }),
        max_stream_count: i32::try_from(plan.streams).unwrap_or(i32::MAX),
        preferred_min_stream_count: 0,
    };
    let routing = format!("read_session.table={}", table.path());
    let session = retry(&bq.conn.retry, "CreateReadSession", |_| {
        let (client, request, routing) = (client.clone(), request.clone(), routing.clone());
        async move {
            let req = client
                .request(request, &routing)
                .await
                .map_err(|e| Failure::permanent(e.to_string()))?;
            client
                .client()
                .create_read_session(req)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| classify_status(&s))
        }
    })
    .await?;
    let schema_bytes = match &session.schema {
        Some(read_session::Schema::ArrowSchema(s)) => s.serialized_schema.clone(),
        _ => {
            if session.streams.is_empty() {
                Vec::new()
            } else {
                return Err(BigQueryError::protocol(
                    "CreateReadSession",
                    "the session has no Arrow schema",
                ));
            }
        }
    };
    tracing::info!(
        session = %session.name,
        streams = session.streams.len(),
        estimated_rows = session.estimated_row_count,
        "BigQuery read session created"
    );
    let filtered = plan
        .row_restriction
        .as_deref()
        .is_some_and(|r| !r.trim().is_empty());
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let schema_bytes = Arc::new(schema_bytes);
    let producers = session
        .streams
        .iter()
        .map(|s| {
            tokio::spawn(read_stream(
                client.clone(),
                s.name.clone(),
                filtered,
                schema_bytes.clone(),
                target.clone(),
                tx.clone(),
            ))
        })
        .collect();
    drop(tx);
    Ok((
        target,
        into_stream(rx, producers, "BigQuery Storage Read".into()),
    ))
}

/// How one ReadRows call ended.
enum Outcome {
    /// The server closed the stream cleanly (gRPC status OK).
    End,
    /// The call failed; transient failures resume at the offset.
    Failed(Failure),
    /// The consumer went away, or an error was already sent to it.
    Stop,
}

/// The read position of one stream.
struct StreamCursor {
    name: String,
    /// Rows read so far: where a resumed ReadRows starts.
    offset: i64,
    /// The server's last reported fraction of the stream processed (`at_response_end`), when
    /// it reports one.
    progress: Option<f64>,
}

impl StreamCursor {
    /// A clean end is a short read when the server's own progress says rows remain.
    fn short_read(&self) -> Option<f64> {
        self.progress.filter(|p| *p < 1.0)
    }
}

/// Reads one stream to its end, resuming at the current offset after transient failures.
///
/// A clean end before the server reports the whole stream processed is treated like a
/// transient failure: the stream is resumed at the offset, so a stream cut short delivers the
/// rest. Without a row restriction the progress is exact, and a stream that stays short past
/// the retry budget fails with [`BigQueryError::ShortStream`]. With one, a resumed call that
/// ends at once with no rows is the server confirming the end, and is accepted (with a
/// warning). A stream that makes no progress within the connection's `timeout_ms` is resumed
/// like a failed one.
///
/// `filtered`: the session has a row restriction, so the server's progress also counts the
/// rows the filter dropped and may stay below 1 at a true end (the API documents progress as
/// approximate with a filter).
async fn read_stream(
    client: ReadClient,
    name: String,
    filtered: bool,
    schema_bytes: Arc<Vec<u8>>,
    target: SchemaRef,
    tx: mpsc::Sender<Result<RecordBatch, OperatorError>>,
) {
    let policy = client.bq.conn.retry.clone();
    let mut decoder = match IpcDecoder::new(&schema_bytes) {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(Err(e.into())).await;
            return;
        }
    };
    let mut cursor = StreamCursor {
        name,
        offset: 0,
        progress: None,
    };
    let mut attempt: u32 = 1;
    // The previous call ended cleanly but short.
    let mut ended_short = false;
    loop {
        let offset_before = cursor.offset;
        // `short`: the server's progress when the stream ended cleanly but short.
        let (failure, short) = match read_rows_once(
            &client,
            &mut cursor,
            &mut decoder,
            &target,
            &tx,
        )
        .await
        {
            Outcome::Stop => return,
            Outcome::End => match cursor.short_read() {
                None => {
                    tracing::debug!(stream = %cursor.name, rows = cursor.offset, "stream read to its end");
                    return;
                }
                Some(progress) if filtered && ended_short && cursor.offset == offset_before => {
                    tracing::warn!(stream = %cursor.name, rows = cursor.offset, progress, "the filtered stream ended below full progress; asked again at the offset, the server confirmed its end");
                    return;
                }
                Some(progress) => (
                    Failure::transient(format!(
                        "the stream ended cleanly after {} rows with {:.3}% of it processed",
                        cursor.offset,
                        progress * 100.0
                    )),
                    Some(progress),
                ),
            },
            Outcome::Failed(failure) => (failure, None),
        };
        ended_short = short.is_some();
        if cursor.offset > offset_before {
            // Progress was made: a later failure gets a fresh retry budget.
            attempt = 1;
        }
        if failure.transient && attempt < policy.attempts() {
            tracing::warn!(stream = %cursor.name, offset = cursor.offset, attempt, error = %failure.message, "ReadRows failed; resuming at the offset");
            tokio::time::sleep(policy.backoff(attempt)).await;
            attempt += 1;
            continue;
        }
        let error = match short {
            Some(progress) => BigQueryError::ShortStream {
                stream: cursor.name.clone(),
                read: cursor.offset,
                percent: progress * 100.0,
                attempts: attempt,
            },
            _ => BigQueryError::Api {
                call: format!("ReadRows ({} at row {})", cursor.name, cursor.offset),
                attempts: attempt,
                message: failure.message,
                transient: failure.transient,
            },
        };
        let _ = tx.send(Err(error.into())).await;
        return;
    }
}

/// One ReadRows call from the cursor's offset, sending each decoded batch downstream.
async fn read_rows_once(
    client: &ReadClient,
    cursor: &mut StreamCursor,
    decoder: &mut IpcDecoder,
    target: &SchemaRef,
    tx: &mpsc::Sender<Result<RecordBatch, OperatorError>>,
) -> Outcome {
    let idle = client.bq.conn.timeout;
    let timed_out = || {
        Outcome::Failed(Failure::transient(format!(
            "no response within {} ms",
            idle.as_millis()
        )))
    };
    let routing = format!("read_stream={}", cursor.name);
    let request = ReadRowsRequest {
        read_stream: cursor.name.clone(),
        offset: cursor.offset,
    };
    let request = match client.request(request, &routing).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(e.into())).await;
            return Outcome::Stop;
        }
    };
    let mut messages = match tokio::time::timeout(idle, client.client().read_rows(request)).await {
        Err(_) => return timed_out(),
        Ok(Err(status)) => return Outcome::Failed(classify_status(&status)),
        Ok(Ok(response)) => response.into_inner(),
    };
    loop {
        let resp = match tokio::time::timeout(idle, messages.message()).await {
            Err(_) => return timed_out(),
            Ok(Err(status)) => return Outcome::Failed(classify_status(&status)),
            Ok(Ok(None)) => return Outcome::End,
            Ok(Ok(Some(resp))) => resp,
        };
        if let Some(progress) = resp.stats.as_ref().and_then(|s| s.progress.as_ref())
            && progress.at_response_end > 0.0
        {
            cursor.progress = Some(progress.at_response_end);
        }
        let Some(read_rows_response::Rows::ArrowRecordBatch(rows)) = resp.rows else {
            continue;
        };
        let batches = match decoder.decode(rows.serialized_record_batch) {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return Outcome::Stop;
            }
        };
        let n: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if resp.row_count != 0 && resp.row_count != n as i64 {
            let e = BigQueryError::protocol(
                format!("ReadRows {}", cursor.name),
                format!("response says {} rows but holds {n}", resp.row_count),
            );
            let _ = tx.send(Err(e.into())).await;
            return Outcome::Stop;
        }
        for batch in batches {
            let item = conform(&batch, target).map_err(OperatorError::from);
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return Outcome::Stop;
            }
        }
        cursor.offset += n as i64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{Field, Schema};
    use arrow::ipc::writer::{IpcDataGenerator, IpcWriteOptions, write_message};

    /// Encodes a schema and a batch the way the Storage Read API sends them.
    fn encode(batch: &RecordBatch, with_eos: bool) -> (Vec<u8>, Vec<u8>) {
        let generator = IpcDataGenerator::default();
        let opts = IpcWriteOptions::default();
        let mut tracker = arrow::ipc::writer::DictionaryTracker::new(false);
        let schema_msg = generator.schema_to_bytes_with_dictionary_tracker(
            batch.schema_ref(),
            &mut tracker,
            &opts,
        );
        let mut schema = Vec::new();
        write_message(&mut schema, schema_msg, &opts).unwrap();
        if with_eos {
            schema.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
        }
        let (_, encoded) = generator
            .encode(batch, &mut tracker, &opts, &mut Default::default())
            .unwrap();
        let mut body = Vec::new();
        write_message(&mut body, encoded, &opts).unwrap();
        (schema, body)
    }

    #[test]
    fn ipc_schema_and_batches_decode_with_or_without_an_end_marker() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            ],
        )
        .unwrap();
        for eos in [false, true] {
            let (schema_bytes, body) = encode(&batch, eos);
            let mut d = IpcDecoder::new(&schema_bytes).unwrap();
            assert_eq!(d.schema().fields().len(), 2);
            for _ in 0..3 {
                let out = d.decode(body.clone()).unwrap();
                assert_eq!(out.len(), 1);
                assert_eq!(out[0], batch);
            }
        }
    }

    #[test]
    fn intervals_read_as_bigquerys_canonical_text() {
        let hms = |h: i64, m: i64, s: i64| (h * 3600 + m * 60 + s) * 1_000_000_000;
        assert_eq!(
            interval_text(14, 3, hms(4, 5, 6) + 789_000_000),
            "1-2 3 4:5:6.789"
        );
        assert_eq!(interval_text(0, 0, 0), "0-0 0 0:0:0");
        assert_eq!(interval_text(-14, -3, -hms(4, 5, 6)), "-1-2 -3 -4:5:6");
        assert_eq!(
            interval_text(6, 0, hms(100, 0, 0) + 1_000),
            "0-6 0 100:0:0.000001"
        );
        let server = RecordBatch::try_from_iter([(
            "iv",
            Arc::new(arrow::array::IntervalMonthDayNanoArray::from(vec![
                Some(arrow::datatypes::IntervalMonthDayNano::new(25, 1, 0)),
                None,
            ])) as ArrayRef,
        )])
        .unwrap();
        let target = Arc::new(Schema::new(vec![Field::new("iv", DataType::Utf8, true)]));
        let out = conform(&server, &target).unwrap();
        assert_eq!(
            out.column(0).as_string::<i32>().iter().collect::<Vec<_>>(),
            vec![Some("2-1 1 0:0:0"), None]
        );
    }

    #[test]
    fn conform_casts_to_the_canonical_types() {
        let server = RecordBatch::try_from_iter([(
            "ts",
            Arc::new(
                arrow::array::TimestampMicrosecondArray::from(vec![1_000_000])
                    .with_timezone("+00:00"),
            ) as ArrayRef,
        )])
        .unwrap();
        let target = Arc::new(Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
            true,
        )]));
        let out = conform(&server, &target).unwrap();
        assert_eq!(out.schema(), target);
        assert!(conform(&RecordBatch::new_empty(Arc::new(Schema::empty())), &target).is_err());
    }
}
