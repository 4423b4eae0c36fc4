//! Answer extraction shared by the importers and the graders.

/// The content of the last `\boxed{...}` (or `\fbox{...}`) in `text`, nested braces
/// respected; `\boxed 5` without braces yields the next token. `None` when there is none or
/// the last one is unbalanced.
pub fn last_boxed(text: &str) -> Option<String> {
    let start = ["\\boxed", "\\fbox"]
        .iter()
        .filter_map(|m| text.rfind(m).map(|i| (i, m.len())))
        .max_by_key(|&(i, _)| i)?;
    let rest = &text[start.0 + start.1..];
    let trimmed = rest.trim_start();
    if trimmed.starts_with('{') {
        brace_group(trimmed).map(|(inner, _)| inner.trim().to_string())
    } else if rest.starts_with(' ') {
        let token: String = trimmed
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '$')
            .collect();
        (!token.is_empty()).then_some(token)
    } else {
        None
    }
}

/// The contents of every `\boxed{...}` (or `\fbox{...}`) in `text`, in order; an unbalanced
/// box ends the list.
pub fn all_boxed(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((i, len)) = ["\\boxed", "\\fbox"]
        .iter()
        .filter_map(|m| text[at..].find(m).map(|i| (at + i, m.len())))
        .min_by_key(|&(i, _)| i)
    {
        let rest = &text[i + len..];
        let trimmed = rest.trim_start();
        if trimmed.starts_with('{') {
            match brace_group(trimmed) {
                Some((inner, _)) => out.push(inner.trim().to_string()),
                None => break,
            }
        } else if rest.starts_with(' ') {
            let token: String = trimmed
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '$')
                .collect();
            if !token.is_empty() {
                out.push(token);
            }
        }
        at = i + len;
    }
    out
}

/// One `\boxed{…}` (or `\fbox{…}`) of a text: where it starts and ends, and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boxed {
    /// Byte offset of the `\boxed` command.
    pub start: usize,
    /// Byte offset just after its closing brace (or its unbraced token).
    pub end: usize,
    /// Its content, trimmed.
    pub inner: String,
}

/// Every box of `text` in order, nested braces respected; a box inside a box is part of the
/// outer one; `\boxed 5` without braces holds the next token. An unbalanced box is left out.
///
/// Linear in the text: the braces are matched once for the whole text, and a marker inside a
/// box already found is skipped, not read again. (Matching each box's braces by scanning on
/// from it made thousands of unclosed `\boxed{` quadratic, and nested boxes copied their
/// contents once per level: found by the fuzz campaign.)
pub fn boxes(text: &str) -> Vec<Boxed> {
    let close = matching_braces(text);
    let mut markers: Vec<(usize, usize)> = ["\\boxed", "\\fbox"]
        .iter()
        .flat_map(|m| text.match_indices(m).map(|(at, m)| (at, m.len())))
        .collect();
    markers.sort_unstable();
    let mut outer: Vec<Boxed> = Vec::new();
    for (at, len) in markers {
        if outer.last().is_some_and(|o| at < o.end) {
            continue;
        }
        let rest = &text[at + len..];
        let trimmed = rest.trim_start();
        let skip = rest.len() - trimmed.len();
        let open = at + len + skip;
        if trimmed.starts_with('{') {
            if let Some(&end) = close.get(&open) {
                outer.push(Boxed {
                    start: at,
                    end: end + 1,
                    inner: text[open + 1..end].trim().to_string(),
                });
            }
        } else if skip > 0 {
            let token: String = trimmed
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '$')
                .collect();
            if !token.is_empty() {
                outer.push(Boxed {
                    start: at,
                    end: open + token.len(),
                    inner: token,
                });
            }
        }
    }
    outer
}

/// The byte offset of each `{` of `text` that closes, mapped to its `}`: what [`brace_group`]
/// finds from that brace, for every brace in one pass.
fn matching_braces(text: &str) -> std::collections::HashMap<usize, usize> {
    let mut open = Vec::new();
    let mut close = std::collections::HashMap::new();
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'{' => open.push(i),
            b'}' => {
                if let Some(o) = open.pop() {
                    close.insert(o, i);
                }
            }
            _ => {}
        }
    }
    close
}

/// The math spans of `text` (`$$…$$`, `\[…\]`, and within a line `$…$`, `\(…\)`), as byte
/// ranges including their delimiters, in order.
pub fn math_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let (mut dollars, mut brackets, mut parens, mut newline) = (
        NextOf::new(text, "$$"),
        NextOf::new(text, "\\]"),
        NextOf::new(text, "\\)"),
        NextOf::new(text, "\n"),
    );
    while i < b.len() {
        let rest = &text[i..];
        let escaped = i > 0 && b[i - 1] == b'\\';
        let mut closing = |open: &str, close: &mut NextOf, one_line: bool| {
            let start = i + open.len();
            let c = close.at_or_after(start)?;
            if one_line && newline.at_or_after(start).is_some_and(|n| n < c) {
                return None;
            }
            Some(c + close.pat.len() - i)
        };
        let found = if escaped {
            None
        } else if rest.starts_with("$$") {
            closing("$$", &mut dollars, false)
        } else if rest.starts_with("\\[") {
            closing("\\[", &mut brackets, false)
        } else if rest.starts_with("\\(") {
            closing("\\(", &mut parens, true)
        } else if rest.starts_with('$') && !(i > 0 && b[i - 1].is_ascii_digit()) {
            // An opener that finds no closer on its line leaves no unescaped `$` after it on
            // that line, so this scan never repeats over the same bytes.
            let rb = rest.as_bytes();
            (1..rb.len())
                .take_while(|&j| rb[j] != b'\n')
                .find(|&j| rb[j] == b'$' && rb[j - 1] != b'\\')
                .filter(|&j| j > 1)
                .map(|j| j + 1)
        } else {
            None
        };
        match found {
            Some(len) => {
                out.push(i..i + len);
                i += len;
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

/// The next occurrence of a delimiter at or after a position, searched for once and reused
/// while the positions asked about have not passed it. [`math_spans`] asks with positions that
/// only grow, so each delimiter is searched for once over the text, where a search per opener
/// made a response of many unclosed `$$` or `\[` quadratic (a 58 KB one took over a second in
/// the fuzz campaign).
struct NextOf<'a> {
    text: &'a str,
    pat: &'static str,
    /// The occurrence found last, if any.
    at: Option<usize>,
    /// No occurrence at or after the last position asked about: none after any later one.
    exhausted: bool,
}

impl<'a> NextOf<'a> {
    fn new(text: &'a str, pat: &'static str) -> Self {
        Self {
            text,
            pat,
            at: None,
            exhausted: false,
        }
    }

    /// The first occurrence starting at or after `pos` (a character boundary).
    fn at_or_after(&mut self, pos: usize) -> Option<usize> {
        if self.exhausted {
            return None;
        }
        if let Some(at) = self.at.filter(|&at| at >= pos) {
            return Some(at);
        }
        self.at = self.text[pos..].find(self.pat).map(|k| pos + k);
        self.exhausted = self.at.is_none();
        self.at
    }
}

/// The boxes of `text` grouped into answers, as Math-Verify groups them. The boxes of one math
/// span are one answer (`$\boxed{1}\boxed{2}$`), and spans that hold boxes and are joined by
/// "and", "or" or a comma alone are one answer (`$\boxed{-2}$ and $\boxed{1}$`); a box outside
/// any span joins the box before it when less than 10 bytes lie between them, or less than 70
/// with "and", "or", "," or ";" among them and another content (`\boxed{1} papers and
/// \boxed{2} bins`). A sentence between boxes keeps them apart (`$\boxed{0}$, but that was a
/// slip; it is $\boxed{81}$`). Each run is a range of indices into `boxes`, in text order.
pub fn box_runs(text: &str, boxes: &[Boxed]) -> Vec<std::ops::Range<usize>> {
    box_runs_in(text, boxes, &math_spans(text))
}

/// [`box_runs`] with the text's math spans ([`math_spans`]) already found.
pub fn box_runs_in(
    text: &str,
    boxes: &[Boxed],
    spans: &[std::ops::Range<usize>],
) -> Vec<std::ops::Range<usize>> {
    if boxes.is_empty() {
        return Vec::new();
    }
    let span_of = |b: &Boxed| {
        spans
            .iter()
            .position(|s| s.start <= b.start && b.end <= s.end)
    };
    let mut runs = Vec::new();
    let mut k = boxes.len();
    while k > 0 {
        let mut first = k - 1;
        match span_of(&boxes[first]) {
            Some(mut span) => loop {
                while first > 0 && span_of(&boxes[first - 1]) == Some(span) {
                    first -= 1;
                }
                // The span before, if it holds the box before this run and only "and", "or"
                // or a comma lies between.
                let joined = first > 0
                    && span > 0
                    && span_of(&boxes[first - 1]) == Some(span - 1)
                    && joins_spans(&text[spans[span - 1].end..spans[span].start]);
                if !joined {
                    break;
                }
                first -= 1;
                span -= 1;
            },
            None => {
                while first > 0 && span_of(&boxes[first - 1]).is_none() {
                    let (prev, next) = (&boxes[first - 1], &boxes[first]);
                    let gap = &text[prev.end..next.start];
                    let same = prev.inner == next.inner;
                    if !(gap.len() < 10 || (gap.len() < 70 && !same && lists(gap))) {
                        break;
                    }
                    first -= 1;
                }
            }
        }
        runs.push(first..k);
        k = first;
    }
    runs.reverse();
    runs
}

/// Whether the text between two math spans joins them into one answer: "and", "or", a comma,
/// ", and", ", or", and spaces.
fn joins_spans(gap: &str) -> bool {
    matches!(
        gap.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .as_str(),
        "," | "and" | "or" | ", and" | ", or" | ",and" | ",or"
    )
}

/// Whether text between two boxes lists them: the word "and" or "or", a comma, a semicolon.
fn lists(gap: &str) -> bool {
    gap.contains([',', ';'])
        || gap
            .split(|c: char| !c.is_ascii_alphabetic())
            .any(|w| w == "and" || w == "or")
}

/// The final answer a solution boxes: its last run of boxes ([`box_runs`]), their distinct
/// contents joined by ", " (`\boxed{-2}$ and $\boxed{1}` is `-2, 1`). The grader reads a
/// response's boxes the same way, so an importer that takes a solution's answer with this
/// agrees with the grader on that solution.
pub fn final_boxed(text: &str) -> Option<String> {
    let all = boxes(text);
    let run = box_runs(text, &all).pop()?;
    let mut parts: Vec<&str> = Vec::new();
    for b in &all[run] {
        if !parts.contains(&b.inner.as_str()) {
            parts.push(&b.inner);
        }
    }
    Some(parts.join(", "))
}

/// Splits `{inner}rest` into `(inner, rest)`, nested braces respected; `None` when `s` does
/// not start with `{` or the group never closes.
pub fn brace_group(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_prefix('{')?;
    let mut depth = 1usize;
    for (i, ch) in body.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&body[..i], &body[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{all_boxed, final_boxed, last_boxed, math_spans};

    #[test]
    fn math_spans_pair_each_opener_with_its_next_closer_once() {
        fn spans(t: &str) -> Vec<&str> {
            math_spans(t).into_iter().map(|r| &t[r]).collect()
        }
        assert_eq!(
            spans("a $$x$$ b \\[y\\] c \\(z\\) d $w$"),
            ["$$x$$", "\\[y\\]", "\\(z\\)", "$w$"]
        );
        // `\(` closes on its own line only; a later one on the closer's line still pairs.
        assert_eq!(spans("\\(a\nb\\( c\\) e"), ["\\( c\\)"]);
        // An opener takes the next closer; one with none left opens nothing.
        assert_eq!(spans("$$ a $$ b $$ c"), ["$$ a $$"]);
        assert_eq!(spans("\\[ a \\[ b \\] c \\[ d"), ["\\[ a \\[ b \\]"]);
    }

    #[test]
    fn takes_the_last_box_with_nested_braces() {
        assert_eq!(
            last_boxed(r"first \boxed{1}, then \boxed{\frac{1}{2}} done").as_deref(),
            Some(r"\frac{1}{2}")
        );
        assert_eq!(last_boxed(r"so \boxed 5$.").as_deref(), Some("5"));
        assert_eq!(last_boxed(r"\fbox{x^{2}}").as_deref(), Some("x^{2}"));
        assert_eq!(last_boxed(r"\boxed{unbalanced").as_deref(), None);
        assert_eq!(last_boxed("no box here"), None);
    }

    #[test]
    fn finds_every_box_in_order() {
        assert_eq!(
            all_boxed(r"\boxed{1} or \fbox{x^{2}} and \boxed 5 then \boxed{1}"),
            ["1", "x^{2}", "5", "1"]
        );
        assert!(all_boxed("none").is_empty());
    }

    #[test]
    fn the_final_answer_is_the_last_run_of_boxes() {
        assert_eq!(
            final_boxed(r"the answers are $\boxed{-2}$ and $\boxed{1}$.").as_deref(),
            Some("-2, 1")
        );
        assert_eq!(
            final_boxed(r"so \boxed{3}. Then later we get \boxed{5}.").as_deref(),
            Some("5")
        );
        assert_eq!(
            final_boxed(r"$\boxed{1}\boxed{2}$").as_deref(),
            Some("1, 2")
        );
        assert_eq!(final_boxed(r"\boxed{x} = \boxed{x}").as_deref(), Some("x"));
        assert_eq!(
            final_boxed(r"\boxed{\boxed{7}}").as_deref(),
            Some(r"\boxed{7}")
        );
        assert_eq!(final_boxed("none"), None);
        assert_eq!(
            final_boxed(r"First $\boxed{0}$, but that was a slip; it is $\boxed{81}$.").as_deref(),
            Some("81")
        );
        assert_eq!(
            final_boxed(r"$$\boxed{(2, 2)} \quad \text{so} \quad \boxed{(6, 2)}$$").as_deref(),
            Some("(2, 2), (6, 2)")
        );
        assert_eq!(
            final_boxed(r"\boxed{1} papers and \boxed{2} bins").as_deref(),
            Some("1, 2")
        );
    }
}
