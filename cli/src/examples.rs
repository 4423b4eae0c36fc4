//! The bundled example problems, compiled in so that `startctl run` works from any directory:
//! math, multiple choice, code, and the data-analysis set with the files it attaches.

/// Each bundled file: its name (as shown in diagnostics) and its bytes.
pub const FILES: [(&str, &str); 4] = [
    (
        "examples/problems/math.jsonl",
        include_str!("../../examples/problems/math.jsonl"),
    ),
    (
        "examples/problems/choice.jsonl",
        include_str!("../../examples/problems/choice.jsonl"),
    ),
    (
        "examples/problems/code.jsonl",
        include_str!("../../examples/problems/code.jsonl"),
    ),
    (
        "examples/data-analysis/problems.jsonl",
        include_str!("../../examples/data-analysis/problems.jsonl"),
    ),
];

/// The files the bundled problems attach, by the path their rows give.
pub const ATTACHMENTS: &[(&str, &[u8])] = &[
    (
        "sales.csv",
        include_bytes!("../../examples/data-analysis/sales.csv"),
    ),
    (
        "returns.parquet",
        include_bytes!("../../examples/data-analysis/returns.parquet"),
    ),
    (
        "stores.sqlite",
        include_bytes!("../../examples/data-analysis/stores.sqlite"),
    ),
];
