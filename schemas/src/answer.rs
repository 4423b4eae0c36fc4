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
    use super::last_boxed;

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
}
