//! Finding the code a model wrote: a fenced python block, whose fence may arrive split
//! across several tokens.

/// Where an open python fence starts in `text`: the byte offset of the opening "```".
pub fn open_fence(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("```") {
        let at = from + i;
        let rest = &text[at + 3..];
        let lang: String = rest.chars().take_while(|c| *c != '\n').collect();
        let lang = lang.trim().to_lowercase();
        if rest.contains('\n') && (lang == "python" || lang == "py" || lang == "python3") {
            return Some(at);
        }
        from = at + 3;
    }
    None
}

/// The code of a python block that opened at `open` and is now closed, if it is.
pub fn closed_block(text: &str, open: usize) -> Option<String> {
    let body_start = open + text[open..].find('\n')? + 1;
    let body = &text[body_start..];
    let close = body.find("```")?;
    Some(body[..close].trim_end_matches('\n').to_string() + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_split_across_tokens_is_found_once_complete() {
        let mut text = String::new();
        let mut found = None;
        for piece in [
            "Let me compute.\n``",
            "`py",
            "thon\nprint(",
            "2**10)\n`",
            "``",
            "\nSo",
        ] {
            text.push_str(piece);
            if let Some(open) = open_fence(&text) {
                if let Some(code) = closed_block(&text, open) {
                    found.get_or_insert(code);
                }
            }
        }
        assert_eq!(found.as_deref(), Some("print(2**10)\n"));
    }

    #[test]
    fn other_languages_and_open_blocks_are_not_run() {
        assert_eq!(open_fence("```text\nhello\n```"), None);
        let t = "```python\nx = 1\n";
        assert_eq!(closed_block(t, open_fence(t).unwrap()), None);
    }
}
