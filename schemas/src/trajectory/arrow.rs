//! The Arrow schema of a trajectory shard and the conversions of rows to and from record
//! batches (through serde).

use super::*;

fn list_of(field: Field) -> DataType {
    DataType::List(Arc::new(field))
}

/// The Arrow schema of a trajectory shard.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let utf8 = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
            let params = Fields::from(vec![
                Field::new("temperature", DataType::Float32, false),
                Field::new("top_k", DataType::UInt32, false),
                Field::new("top_p", DataType::Float32, false),
                Field::new("min_p", DataType::Float32, false),
                Field::new("repeat_penalty", DataType::Float32, false),
                Field::new("max_new_tokens", DataType::UInt32, false),
                Field::new("max_tool_calls", DataType::UInt32, false),
                Field::new("seed", DataType::UInt64, false),
            ]);
            let hint_origin = Fields::from(vec![
                utf8("kind", false),
                utf8("trigger", false),
                utf8("replaced", false),
            ]);
            let segment = Fields::from(vec![
                utf8("kind", false),
                utf8("text", false),
                Field::new(
                    "tokens",
                    list_of(Field::new("item", DataType::Int32, false)),
                    false,
                ),
                Field::new("hint", DataType::Struct(hint_origin), true),
            ]);
            let hint_settings = Fields::from(vec![
                Field::new("trigger_probability", DataType::Float64, false),
                Field::new("max_trigger_hints", DataType::UInt32, false),
                Field::new("end_hints", DataType::UInt32, false),
                Field::new("min_tool_calls_left", DataType::UInt32, false),
                Field::new("min_context_left", DataType::UInt32, false),
                Field::new("run_answer_code", DataType::Boolean, false),
                Field::new("show_calls_left", DataType::Boolean, false),
            ]);
            let tool_call = Fields::from(vec![
                Field::new("segment", DataType::UInt32, false),
                utf8("tool", false),
                Field::new("exit_code", DataType::Int32, true),
                Field::new("timed_out", DataType::Boolean, false),
                Field::new("memory_exceeded", DataType::Boolean, false),
                Field::new("truncated", DataType::Boolean, false),
                Field::new("duration_ms", DataType::Float64, false),
                utf8("error", true),
            ]);
            let figure = Fields::from(vec![
                Field::new("segment", DataType::UInt32, false),
                Field::new("index", DataType::UInt32, false),
                Field::new("width", DataType::UInt32, false),
                Field::new("height", DataType::UInt32, false),
                Field::new("size", DataType::UInt64, false),
                Field::new("png", DataType::Binary, false),
            ]);
            let fields = vec![
                utf8("job_id", false),
                utf8("problem_id", false),
                Field::new("sample_index", DataType::UInt32, false),
                utf8("source", false),
                utf8("kind", false),
                utf8("mode", false),
                utf8("model_name", false),
                utf8("model_sha256", false),
                utf8("backend", false),
                utf8("model_identity", true),
                utf8("token_ids_source", false),
                Field::new("params", DataType::Struct(params), false),
                Field::new("seed", DataType::UInt64, false),
                utf8("prompt", false),
                Field::new(
                    "prompt_token_ids",
                    list_of(Field::new("item", DataType::Int32, false)),
                    false,
                ),
                Field::new("generation_prefix_tokens", DataType::UInt32, false),
                utf8("user_message", false),
                utf8("generation_prefix", false),
                utf8("full_text", false),
                Field::new(
                    "segments",
                    list_of(Field::new("item", DataType::Struct(segment), false)),
                    false,
                ),
                Field::new(
                    "tool_calls",
                    list_of(Field::new("item", DataType::Struct(tool_call), false)),
                    false,
                ),
                Field::new(
                    "tools",
                    list_of(Field::new("item", DataType::Utf8, false)),
                    false,
                ),
                Field::new(
                    "figures",
                    list_of(Field::new("item", DataType::Struct(figure), false)),
                    false,
                ),
                Field::new("tool_errors", DataType::UInt32, false),
                utf8("finish_reason", false),
                utf8("finish_detail", true),
                utf8("end_of_turn", true),
                Field::new("end_of_turn_token", DataType::Int32, true),
                Field::new("tool_limit_reached", DataType::Boolean, false),
                Field::new("hint_settings", DataType::Struct(hint_settings), true),
                utf8("hint_library_sha256", false),
                utf8("sandbox", false),
                utf8("final_answer", true),
                Field::new("correct", DataType::Boolean, true),
                Field::new("score", DataType::Float32, true),
                utf8("grading_detail", true),
                Field::new(
                    "choice_permutation",
                    list_of(Field::new("item", DataType::UInt32, false)),
                    true,
                ),
                Field::new("prompt_tokens", DataType::UInt32, false),
                Field::new("completion_tokens", DataType::UInt32, false),
                Field::new("wall_time_s", DataType::Float64, false),
                utf8("worker_id", false),
                utf8("trajectory_sha256", false),
                Field::new(
                    "created_at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC_TZ.into())),
                    false,
                ),
            ];
            let metadata =
                HashMap::from([(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string())]);
            Arc::new(Schema::new_with_metadata(fields, metadata))
        })
        .clone()
}

/// Converts rows to one record batch of [`schema`]. The Arrow arrays are built from the rows'
/// fields directly (serde_arrow), so every value, a float's last bit included, lands as it is:
/// no text form on the way.
pub fn to_record_batch(rows: &[Trajectory]) -> Result<RecordBatch, ArrowError> {
    let schema = schema();
    if rows.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    let batch = serde_arrow::to_record_batch(&fields, &rows)
        .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
    // serde_arrow builds the fields' schema; the shard's carries the version too.
    batch.with_schema(schema)
}

/// Converts a record batch of [`schema`] (or of an older version's, whose missing columns take
/// their defaults) back to rows, value for value.
pub fn from_record_batch(batch: &RecordBatch) -> Result<Vec<Trajectory>, ArrowError> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    serde_arrow::from_record_batch(batch).map_err(|e| ArrowError::ExternalError(Box::new(e)))
}
