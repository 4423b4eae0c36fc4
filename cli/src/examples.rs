//! The bundled example problems, compiled in so that `startctl run` works from any directory.

/// Each bundled file: its name (as shown in diagnostics) and its bytes.
pub const FILES: [(&str, &str); 3] = [
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
];
