//! Finding the code a model writes: a fenced block in the language of an enabled tool
//! ([`crate::tool`]), whose fence may arrive split across several tokens, or may have been
//! opened by a hint.
//!
//! The engine looks at the bytes of the current segment after each token. A fence counts as
//! opened at the token that completes its opening line (` ```python\n `, ` ```sql\n `), found
//! once; it counts as closed at the first ` ``` ` after its body starts.

use crate::tool;
use start_schemas::tool::{ToolName, ToolSet};

/// A tool's fence whose opening line was completed by the last `new_len` bytes of `text`:
/// `(where its "```" starts, where its body starts, the tool)`, byte offsets into `text`. Only
/// fences of `enabled` tools count. A fence completed earlier is not found again, so a block
/// left as text is never reopened.
pub fn opened_by_last(
    text: &[u8],
    new_len: usize,
    enabled: ToolSet,
) -> Option<(usize, usize, ToolName)> {
    let new_from = text.len().saturating_sub(new_len);
    let mut from = 0;
    while let Some(i) = find(&text[from..], b"```") {
        let at = from + i;
        let rest = &text[at + 3..];
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let line_end = at + 3 + nl;
        if line_end >= new_from {
            if let Some(t) = tool::enabled_for_tag(&String::from_utf8_lossy(&rest[..nl]), enabled) {
                return Some((at, line_end + 1, t.name));
            }
        }
        from = at + 3;
    }
    None
}

/// Where the fence closing a block whose body is `body` starts, once it has arrived.
pub fn closing(body: &[u8]) -> Option<usize> {
    find(body, b"```")
}

/// The code to run for a block body up to its closing fence: trailing newlines collapsed to
/// one, as a file would end.
pub fn code_of(body: &[u8], close: usize) -> String {
    let code = String::from_utf8_lossy(&body[..close]);
    code.trim_end_matches('\n').to_string() + "\n"
}

/// The tool whose block `text` ends inside: an opening fence line (` ```python `, ` ```sql `)
/// with nothing after it. Hints that end so make the next tokens that tool's code.
pub fn ends_with_open_fence(text: &str) -> Option<ToolName> {
    let body = text.strip_suffix('\n')?;
    let at = body.rfind("```")?;
    let lang = &body[at + 3..];
    if lang.contains('\n') {
        return None;
    }
    tool::for_tag(lang).map(|t| t.name)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_split_across_tokens_is_found_once_complete_and_only_once() {
        let mut text = Vec::new();
        let mut opened = Vec::new();
        let mut code = None;
        let pieces = [
            "Let me compute.\n``",
            "`py",
            "thon",
            "\nprint(",
            "2**10)\n`",
            "``",
            "\nSo",
            " it is 1024.",
        ];
        for piece in pieces {
            text.extend_from_slice(piece.as_bytes());
            if let Some((at, body, tool)) = opened_by_last(&text, piece.len(), ToolSet::PYTHON) {
                assert_eq!(tool, ToolName::Python);
                opened.push((at, body));
            }
            if let Some(&(_, body)) = opened.first() {
                if let Some(close) = closing(&text[body..]) {
                    code.get_or_insert_with(|| code_of(&text[body..], close));
                }
            }
        }
        assert_eq!(
            opened,
            [(16, 26)],
            "found once, at the token ending its line"
        );
        assert_eq!(code.as_deref(), Some("print(2**10)\n"));
    }

    #[test]
    fn other_languages_are_not_code_and_a_hint_may_end_with_an_open_fence() {
        let t = b"```text\nhello\n```";
        assert_eq!(opened_by_last(t, t.len(), ToolSet::all()), None);
        let sql = b"Let me query.\n```sql\nSELECT 1;\n```";
        assert_eq!(
            opened_by_last(&sql[..21], 7, ToolSet::PYTHON),
            None,
            "sql not enabled"
        );
        assert_eq!(
            opened_by_last(&sql[..21], 7, ToolSet::all()),
            Some((14, 21, ToolName::Sql))
        );
        assert_eq!(
            ends_with_open_fence("Wait, I can use Python to check this.\n```python\n"),
            Some(ToolName::Python)
        );
        assert_eq!(
            ends_with_open_fence("Wait, let me query the data.\n```sql\n"),
            Some(ToolName::Sql)
        );
        assert_eq!(ends_with_open_fence("Wait, use Python.\n"), None);
        assert_eq!(ends_with_open_fence("```python\nx = 1\n"), None);
        assert_eq!(ends_with_open_fence("```output\n"), None);
    }
}
