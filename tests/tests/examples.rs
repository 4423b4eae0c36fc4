//! The bundled data-analysis set's answers, recomputed from its attached files by engines start
//! does not use for them (DuckDB for the CSV and Parquet questions, pandas for the SQLite one):
//! the answers the generator wrote are the data's.

#[test]
fn the_data_analysis_answers_agree_with_duckdb_and_pandas() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data-analysis");
    let out = start_tests::python::reader("check_data_answers.py", &[dir.to_str().unwrap()]);
    assert!(out.ends_with("9 answers agree\n"), "{out}");
}
