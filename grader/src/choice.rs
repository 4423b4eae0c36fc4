//! Multiple choice: which option a response chose.

use start_schemas::answer::last_boxed;

/// The option letter a response chose, among the first `n` letters, from the common phrasings:
/// `\boxed{B}`, "the answer is (B)", "Answer: B", "**B**", or a final line that is a letter.
/// `None` when it names no option or names several at the same place.
pub fn extract_letter(text: &str, n: usize) -> Option<char> {
    let valid = |c: char| c.is_ascii_uppercase() && ((c as u8 - b'A') as usize) < n;
    let letter_in = |s: &str| -> Option<char> {
        let t = s.trim().trim_matches(|c: char| {
            matches!(c, '(' | ')' | '*' | '.' | ':' | '$' | ' ' | '[' | ']')
        });
        let t = t
            .strip_prefix("\\text{")
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or(t);
        let t = t.trim_matches(|c: char| matches!(c, '(' | ')'));
        let mut chars = t.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if valid(c.to_ascii_uppercase()) => Some(c.to_ascii_uppercase()),
            (Some(c), Some(next)) if valid(c) && !next.is_ascii_alphanumeric() => Some(c),
            _ => None,
        }
    };
    if let Some(b) = last_boxed(text) {
        if let Some(c) = letter_in(&b) {
            return Some(c);
        }
    }
    let lower = text.to_lowercase();
    let phrasings = [
        "the answer is",
        "answer is",
        "answer:",
        "correct option is",
        "correct answer is",
        "choice is",
        "option",
    ];
    let best = phrasings
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| i + p.len()))
        .max();
    if let Some(at) = best {
        if text.is_char_boundary(at) {
            let rest = &text[at..];
            let word: String = rest
                .trim_start_matches([' ', ':', '*', '('])
                .chars()
                .take(3)
                .collect();
            if let Some(c) = letter_in(&word) {
                return Some(c);
            }
        }
    }
    let last_line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    letter_in(last_line)
}
