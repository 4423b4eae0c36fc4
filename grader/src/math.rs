//! Math answers: extraction, LaTeX normalisation and comparison.
//!
//! Comparison goes from cheap and certain to expensive: normalised strings, then exact
//! rationals (with a tolerance when either side is written as a decimal), then structure
//! (tuples and intervals in order, sets in any order), and only then, for what is left
//! undecided, sympy in the sandbox ([`crate::Grader`]).

use start_schemas::answer::{brace_group, last_boxed};

/// Relative tolerance for answers written as decimals.
pub const DECIMAL_TOLERANCE: f64 = 1e-6;

/// The answer a response gives: its last `\boxed{...}`, else the last "the answer is ..." or
/// "answer: ..." phrasing.
pub fn extract_answer(text: &str) -> Option<String> {
    if let Some(boxed) = last_boxed(text) {
        return Some(boxed);
    }
    let lower = text.to_lowercase();
    let phrasings = [
        "final answer is",
        "the answer is",
        "final answer:",
        "answer:",
        "answer is",
    ];
    let (at, len) = phrasings
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, p.len())))
        .max_by_key(|&(i, _)| i)?;
    // `lower` and `text` have the same byte offsets only for ASCII; map through char indices.
    let start = byte_offset_after(text, &lower, at + len)?;
    let line = text[start..].lines().next().unwrap_or("").trim();
    let line = line
        .trim_start_matches([':', '*', ' '])
        .trim_end_matches(['.', '*', ' ']);
    let line = line.trim_matches('$').trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// The answer of a response, or, when it has no answer phrasing and is a single short line,
/// the response itself: outputs graded with `startctl grade` are often bare answers.
pub fn extract_or_bare(text: &str) -> Option<String> {
    extract_answer(text).or_else(|| {
        let t = text.trim();
        (!t.is_empty() && t.len() <= 100 && !t.contains('\n')).then(|| t.to_string())
    })
}

/// Maps a byte offset in the lower-cased text back to the original text.
fn byte_offset_after(text: &str, lower: &str, lower_at: usize) -> Option<usize> {
    if text.len() == lower.len() {
        return text.is_char_boundary(lower_at).then_some(lower_at);
    }
    let chars_before = lower.get(..lower_at)?.chars().count();
    Some(
        text.char_indices()
            .nth(chars_before)
            .map_or(text.len(), |(i, _)| i),
    )
}

/// Removes every `\cmd{...}` wrapper in `cmds`, keeping the braces' content.
fn unwrap_commands(s: &str, cmds: &[&str]) -> String {
    let mut out = s.to_string();
    for cmd in cmds {
        while let Some(i) = out.find(cmd) {
            let after = i + cmd.len();
            let rest = &out[after..];
            let trimmed = rest.trim_start();
            if !trimmed.starts_with('{') {
                // Not followed by a group: drop the command word alone.
                out.replace_range(i..after, "");
                continue;
            }
            let open = after + (rest.len() - trimmed.len());
            let Some((inner, tail)) = brace_group(&out[open..]) else {
                out.replace_range(i..after, "");
                continue;
            };
            let (inner, close) = (inner.to_string(), out.len() - tail.len() - 1);
            out.replace_range(i..=close, &inner);
        }
    }
    out
}

/// Rewrites `\frac12` and `\frac1{x}` shorthands to `\frac{1}{2}`, `\frac{1}{x}`.
fn expand_frac_shorthand(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\frac") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        for _ in 0..2 {
            let mut chars = rest.chars();
            match chars.next() {
                Some('{') => {
                    // Copy the balanced group as is (an unclosed one to the end).
                    let end =
                        brace_group(rest).map_or(rest.len(), |(_, tail)| rest.len() - tail.len());
                    out.push_str(&rest[..end]);
                    rest = &rest[end..];
                }
                Some(ch) if ch.is_ascii_alphanumeric() => {
                    out.push('{');
                    out.push(ch);
                    out.push('}');
                    rest = &rest[ch.len_utf8()..];
                }
                _ => break,
            }
        }
    }
    out.push_str(rest);
    out
}

/// Canonical string form of a LaTeX answer: delimiters, sizing, text wrappers, units, degrees
/// and spaces removed; `\dfrac` and `\tfrac` as `\frac`; a leading `x =` dropped.
pub fn normalise(answer: &str) -> String {
    let mut s = answer.trim().to_string();
    for (from, to) in [("\\[", ""), ("\\]", ""), ("\\(", ""), ("\\)", "")] {
        s = s.replace(from, to);
    }
    s = s.trim_matches('$').to_string();
    s = unwrap_commands(
        &s,
        // Longer names first: `\\text` is a prefix of `\\textbf`.
        &[
            "\\displaystyle",
            "\\textbf",
            "\\mathrm",
            "\\mathbf",
            "\\boxed",
            "\\text",
            "\\mbox",
        ],
    );
    for (from, to) in [
        ("\\left", ""),
        ("\\right", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\circ", ""),
        ("\\degree", ""),
        ("°", ""),
        ("{,}", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\ ", ""),
        ("~", ""),
        ("\\$", ""),
        ("dollars", ""),
        ("\\cdot", "*"),
        ("\\times", "*"),
        ("\\le", "<="),
        ("\\ge", ">="),
    ] {
        s = s.replace(from, to);
    }
    // `\leq`/`\geq` became `<=q`/`>=q` above; undo the stray q.
    s = s.replace("<=q", "<=").replace(">=q", ">=");
    s = expand_frac_shorthand(&s);
    s.retain(|c| !c.is_whitespace());
    // `x=5`, `y\in(1,2)`: keep the right-hand side when the left is a lone variable.
    for sep in ["=", "\\in"] {
        if let Some(i) = s.find(sep) {
            let lhs = &s[..i];
            let is_var = !lhs.is_empty()
                && lhs.len() <= 8
                && lhs
                    .chars()
                    .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '\\');
            if is_var && !s[i + sep.len()..].contains('=') {
                s = s[i + sep.len()..].to_string();
            }
        }
    }
    // Units after a number ("10cm", "5meters"): drop trailing letters when a number remains.
    // A single letter is a variable ("0.5x"), not a unit.
    let trimmed = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if s.len() - trimmed.len() >= 2 && !trimmed.is_empty() && parse_number(trimmed).is_some() {
        s = trimmed.to_string();
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    s.replace("-.", "-0.")
}

/// An exact rational.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rational {
    num: i128,
    den: i128,
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rational {
    /// `num / den`, reduced; `None` for a zero denominator.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let sign = if den < 0 { -1 } else { 1 };
        Some(Self {
            num: sign * num / g,
            den: sign * den / g,
        })
    }

    fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    fn scale(self, factor: i128, divide: bool) -> Option<Self> {
        if divide {
            Rational::new(self.num, self.den.checked_mul(factor)?)
        } else {
            Rational::new(self.num.checked_mul(factor)?, self.den)
        }
    }
}

/// A parsed number: its value, and whether it was written as a decimal (then compared with a
/// tolerance) or as a percentage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number {
    value: Rational,
    decimal: bool,
    percent: bool,
}

/// Parses integers (with thousands separators), decimals, `a/b`, `\frac{a}{b}`, mixed numbers
/// (`2\frac{1}{2}`) and percentages.
pub fn parse_number(s: &str) -> Option<Number> {
    let s = s.trim();
    if let Some(body) = s.strip_suffix("\\%").or_else(|| s.strip_suffix('%')) {
        let mut n = parse_number(body)?;
        n.percent = true;
        return Some(n);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut n = parse_unsigned(body)?;
    if neg {
        n.value.num = -n.value.num;
    }
    Some(n)
}

fn parse_unsigned(s: &str) -> Option<Number> {
    if let Some(rest) = s.strip_prefix("\\frac") {
        let (a, rest) = group(rest)?;
        let (b, rest) = group(rest)?;
        if !rest.is_empty() {
            return None;
        }
        return divide(parse_number(a)?, parse_number(b)?);
    }
    if let Some(i) = s.find("\\frac") {
        // Mixed number: whole part, then a fraction.
        let whole = parse_integer(&s[..i])?;
        let frac = parse_unsigned(&s[i..])?;
        let value = Rational::new(
            whole
                .checked_mul(frac.value.den)?
                .checked_add(frac.value.num)?,
            frac.value.den,
        )?;
        return Some(Number {
            value,
            decimal: false,
            percent: false,
        });
    }
    if let Some((a, b)) = s.split_once('/') {
        return divide(parse_number(a)?, parse_number(b)?);
    }
    let plain = strip_thousands(s)?;
    let (int, frac) = match plain.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (plain.as_str(), None),
    };
    if int.is_empty() && frac.is_none() {
        return None;
    }
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(int) || !frac.is_none_or(|f| !f.is_empty() && f.len() <= 18 && digits_ok(f)) {
        return None;
    }
    let int_val: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let value = match frac {
        None => Rational::new(int_val, 1)?,
        Some(f) => {
            let den = 10i128.checked_pow(f.len() as u32)?;
            Rational::new(int_val.checked_mul(den)?.checked_add(f.parse().ok()?)?, den)?
        }
    };
    Some(Number {
        value,
        decimal: frac.is_some(),
        percent: false,
    })
}

/// `a / b`, for `\frac{a}{b}` and `a/b`.
fn divide(a: Number, b: Number) -> Option<Number> {
    let value = Rational::new(
        a.value.num.checked_mul(b.value.den)?,
        a.value.den.checked_mul(b.value.num)?,
    )?;
    Some(Number {
        value,
        decimal: a.decimal || b.decimal,
        percent: false,
    })
}

fn parse_integer(s: &str) -> Option<i128> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `1,234,567` → `1234567`; a comma anywhere else makes it not a plain number.
fn strip_thousands(s: &str) -> Option<String> {
    if !s.contains(',') {
        return Some(s.to_string());
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let groups: Vec<&str> = int.split(',').collect();
    let ok =
        !groups[0].is_empty() && groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3);
    ok.then(|| {
        let mut out = groups.concat();
        if let Some(f) = frac {
            out.push('.');
            out.push_str(f);
        }
        out
    })
}

/// Splits a leading `{group}` (or a single character) from `s`.
fn group(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('{') {
        brace_group(s)
    } else {
        let ch = s.chars().next()?;
        Some((&s[..ch.len_utf8()], &s[ch.len_utf8()..]))
    }
}

/// A parsed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number.
    Number(Number),
    /// An ordered tuple or an interval, with its brackets.
    Ordered {
        /// `(` or `[`.
        open: char,
        /// `)` or `]`.
        close: char,
        /// The elements, in order.
        items: Vec<Value>,
    },
    /// An unordered collection: `\{a, b\}`, or a bare list `a, b` of several answers.
    Set(Vec<Value>),
    /// Anything else, in normalised form.
    Expr(String),
}

/// Splits on commas at bracket depth zero.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Parses a normalised answer into a [`Value`].
pub fn parse_value(s: &str) -> Value {
    if let Some(n) = parse_number(s) {
        return Value::Number(n);
    }
    if let Some(inner) = s.strip_prefix("\\{").and_then(|r| r.strip_suffix("\\}")) {
        return Value::Set(split_top(inner).into_iter().map(parse_value).collect());
    }
    let first = s.chars().next().unwrap_or(' ');
    let last = s.chars().last().unwrap_or(' ');
    if matches!(first, '(' | '[') && matches!(last, ')' | ']') && s.len() >= 2 {
        let inner = &s[1..s.len() - 1];
        let parts = split_top(inner);
        if parts.len() >= 2 && balanced(inner) {
            return Value::Ordered {
                open: first,
                close: last,
                items: parts.into_iter().map(parse_value).collect(),
            };
        }
    }
    let parts = split_top(s);
    if parts.len() >= 2 {
        return Value::Set(parts.into_iter().map(parse_value).collect());
    }
    Value::Expr(s.to_string())
}

fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for ch in s.chars() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

/// What the cheap comparison found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Equal, and how that was established.
    Equal(&'static str),
    /// Certainly different.
    Different,
    /// Needs symbolic help (sympy).
    Undecided,
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    let candidates = |n: &Number| -> Vec<Rational> {
        let mut v = vec![n.value];
        if n.percent {
            if let Some(x) = n.value.scale(100, true) {
                v.push(x);
            }
        }
        v
    };
    let tolerant = a.decimal || b.decimal;
    candidates(a).iter().any(|x| {
        candidates(b).iter().any(|y| {
            if tolerant {
                let (fx, fy) = (x.to_f64(), y.to_f64());
                (fx - fy).abs() <= DECIMAL_TOLERANCE * fx.abs().max(fy.abs()).max(1.0)
            } else {
                x == y
            }
        })
    })
}

/// Compares two parsed values.
pub fn compare_values(gold: &Value, pred: &Value) -> Comparison {
    use Comparison::*;
    match (gold, pred) {
        (Value::Number(a), Value::Number(b)) => {
            if numbers_equal(a, b) {
                Equal(if a.decimal || b.decimal {
                    "decimal"
                } else {
                    "rational"
                })
            } else {
                Different
            }
        }
        (
            Value::Ordered {
                open: o1,
                close: c1,
                items: a,
            },
            Value::Ordered {
                open: o2,
                close: c2,
                items: b,
            },
        ) => {
            if o1 != o2 || c1 != c2 || a.len() != b.len() {
                return Different;
            }
            combine(
                a.iter().zip(b).map(|(x, y)| compare_values(x, y)),
                "ordered",
            )
        }
        (Value::Set(a), Value::Set(b)) => {
            if a.len() != b.len() {
                return Different;
            }
            // Greedy matching: equality of answers is an equivalence, so greedy is exact.
            let mut used = vec![false; b.len()];
            let mut undecided = false;
            for x in a {
                let mut found = false;
                for (j, y) in b.iter().enumerate() {
                    if used[j] {
                        continue;
                    }
                    match compare_values(x, y) {
                        Equal(_) => {
                            used[j] = true;
                            found = true;
                            break;
                        }
                        Undecided => undecided = true,
                        Different => {}
                    }
                }
                if !found {
                    return if undecided { Undecided } else { Different };
                }
            }
            Equal("set")
        }
        (Value::Set(a), other) | (other, Value::Set(a)) if a.len() == 1 => {
            compare_values(&a[0], other)
        }
        (Value::Expr(a), Value::Expr(b)) if a == b => Equal("string"),
        (Value::Ordered { .. }, Value::Set(_)) | (Value::Set(_), Value::Ordered { .. }) => {
            Different
        }
        (Value::Ordered { items, .. }, Value::Number(_))
        | (Value::Number(_), Value::Ordered { items, .. })
            if items.iter().all(|i| matches!(i, Value::Number(_))) =>
        {
            Different
        }
        _ => Undecided,
    }
}

fn combine(parts: impl Iterator<Item = Comparison>, how: &'static str) -> Comparison {
    let mut undecided = false;
    for p in parts {
        match p {
            Comparison::Different => return Comparison::Different,
            Comparison::Undecided => undecided = true,
            Comparison::Equal(_) => {}
        }
    }
    if undecided {
        Comparison::Undecided
    } else {
        Comparison::Equal(how)
    }
}

/// Compares a reference answer with a predicted one without sympy.
pub fn compare(gold: &str, pred: &str) -> Comparison {
    let (g, p) = (normalise(gold), normalise(pred));
    if g.is_empty() || p.is_empty() {
        return Comparison::Different;
    }
    if g == p {
        return Comparison::Equal("string");
    }
    compare_values(&parse_value(&g), &parse_value(&p))
}

/// A LaTeX expression as sympy source text, for the symbolic fallback.
pub fn latex_to_sympy(latex: &str) -> String {
    let mut s = normalise(latex);
    // \frac{a}{b} -> ((a)/(b)), innermost first.
    while let Some(i) = s.rfind("\\frac") {
        let rest = &s[i + 5..];
        let Some((a, r)) = group(rest) else { break };
        let Some((b, r)) = group(r) else { break };
        let replaced = format!("(({a})/({b}))");
        let end = s.len() - r.len();
        s.replace_range(i..end, &replaced);
    }
    while let Some(i) = s.rfind("\\sqrt") {
        let rest = &s[i + 5..];
        let (index, rest2) = match rest.strip_prefix('[') {
            Some(r) => match r.split_once(']') {
                Some((n, r2)) => (Some(n.to_string()), r2),
                None => break,
            },
            None => (None, rest),
        };
        let Some((a, r)) = group(rest2) else { break };
        let replaced = match index {
            Some(n) => format!("root({a},{n})"),
            None => format!("sqrt({a})"),
        };
        let end = s.len() - r.len();
        s.replace_range(i..end, &replaced);
    }
    for (from, to) in [
        ("\\pi", "pi"),
        ("\\infty", "oo"),
        ("\\ln", "log"),
        ("\\log", "log"),
        ("\\sin", "sin"),
        ("\\cos", "cos"),
        ("\\tan", "tan"),
        ("\\exp", "exp"),
        ("^", "**"),
        ("{", "("),
        ("}", ")"),
        ("\\", ""),
    ] {
        s = s.replace(from, to);
    }
    s
}
