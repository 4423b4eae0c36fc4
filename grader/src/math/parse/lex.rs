//! The tokens of answer LaTeX: numbers (digit groups merged), letters, text, commands and
//! operators; and the number and text-symbol readers the grammar uses.

use super::*;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Num(String),
    Letter(char),
    Text(String),
    Cmd(String),
    Op(char),
}

pub(super) fn tokenize(s: &str) -> R<Vec<Tok>> {
    let s = merge_digit_groups(s);
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len()
                && chars[i] == '.'
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // Scientific notation `1e2`, `2.5E-3` (a lone `2e` is 2 times e).
            let mut k = i;
            if k < chars.len() && (chars[k] == 'e' || chars[k] == 'E') {
                k += 1;
                if k < chars.len() && (chars[k] == '-' || chars[k] == '+') {
                    k += 1;
                }
                let digits = k;
                while k < chars.len() && chars[k].is_ascii_digit() {
                    k += 1;
                }
                if k > digits && !chars.get(k).is_some_and(|c| c.is_alphabetic()) {
                    let text: String = chars[start..k].iter().collect();
                    let value: f64 = text.parse().map_err(|_| ParseError)?;
                    out.push(Tok::Num(format_float(value)));
                    i = k;
                    continue;
                }
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() {
            out.push(Tok::Letter(c));
            i += 1;
        } else if c == '\\' {
            let start = i + 1;
            i += 1;
            if i < chars.len() && chars[i].is_ascii_alphabetic() {
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if name == "text" {
                    // `\text{words}`: the cleaner left only text answers in this form.
                    let rest: String = chars[i..].iter().collect();
                    let (inner, tail) =
                        start_schemas::answer::brace_group(rest.trim_start()).ok_or(ParseError)?;
                    out.push(Tok::Text(inner.to_string()));
                    i = chars.len() - tail.chars().count();
                } else {
                    out.push(Tok::Cmd(name));
                }
            } else if i < chars.len() {
                // `\{`, `\}`, `\\`, `\|`.
                out.push(Tok::Cmd(chars[i].to_string()));
                i += 1;
            }
        } else if "+-*/^_!()[]{},=<>|&;%:'".contains(c) {
            out.push(Tok::Op(c));
            i += 1;
        } else {
            return Err(ParseError);
        }
    }
    Ok(out)
}

/// `7,425,000` and `1 000 000` are one number: digit groups of three after a first group of
/// one to three digits, joined by commas or single spaces, outside brackets (`(12,102)` is an
/// interval). A comma list of other numbers, `1,-2` or `3,5,7`, stays a list.
pub(super) fn merge_digit_groups(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut depth = 0i32;
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        // A leading zero never starts thousands groups: `0,111` is not 111.
        let starts_number = depth == 0
            && b[i].is_ascii_digit()
            && b[i] != b'0'
            && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b'.'));
        if starts_number {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let first = j - i;
            let mut groups = vec![(i, j)];
            let mut k = j;
            let mut sep = None;
            if first <= 3 {
                while let Some(&c) = b.get(k) {
                    if !(c == b',' || c == b' ') || sep.is_some_and(|s| s != c) {
                        break;
                    }
                    let g = k + 1;
                    let mut e = g;
                    while e < b.len() && b[e].is_ascii_digit() {
                        e += 1;
                    }
                    let next_is_digitish = b.get(e).is_some_and(|&n| n.is_ascii_digit());
                    if e - g != 3 || next_is_digitish {
                        break;
                    }
                    sep = Some(c);
                    groups.push((g, e));
                    k = e;
                }
            }
            if groups.len() > 1 {
                for (a, e) in groups {
                    out.push_str(&s[a..e]);
                }
                i = k;
                continue;
            }
            out.push_str(&s[i..j]);
            i = j;
            continue;
        }
        let ch = s[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A float as a decimal literal for the token stream: integral values keep a `.0` so that
/// they stay floats.
pub(super) fn format_float(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

pub(super) fn number(s: &str) -> R<Num> {
    match s.split_once('.') {
        None => Ok(Num::Exact(Rat::int(s.parse().map_err(|_| ParseError)?))),
        Some(_) => Ok(Num::Float(s.parse().map_err(|_| ParseError)?)),
    }
}

/// A text answer's symbol: trimmed, outer parentheses and a trailing period dropped,
/// lower-cased (Math-Verify compares names of more than one letter without case).
pub(super) fn text_symbol(t: &str) -> String {
    let mut s = t.trim().trim_end_matches('.').trim();
    while let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        s = inner.trim();
    }
    if s.chars().count() > 1 {
        s.to_lowercase()
    } else {
        s.to_string()
    }
}
