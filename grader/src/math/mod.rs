//! Math answers: finding the answer in a response, cleaning its LaTeX, parsing it, and
//! deciding whether it is the gold answer.
//!
//! The reference is Hugging Face's Math-Verify (what open-r1, lighteval and most RFT pipelines
//! grade with), checked pair by pair against it (`grader/tests/math_verify.rs`). Extraction
//! follows its priorities: a `\boxed{}` or "final answer is", then "answer:", then "answer",
//! then the last math or number in the text, the rightmost first at each level. Comparison
//! follows its rules for numbers (floats rounded to 6 places, an integer only equal to a
//! float of exactly its value, percent signs forgiven), sets, tuples, intervals, matrices,
//! equations and text answers; where it would call sympy's `simplify`, start evaluates both
//! sides at several points instead, which decides the same questions in microseconds. What
//! start decides differently on purpose is listed, with the reason, in
//! `grader/tests/fixtures/math_verify_differences.jsonl`.

mod compare;
mod expr;
mod latex;
mod parse;

pub use compare::Cmp;

/// What was decided about a response.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Equal, different, or unknown.
    pub outcome: Cmp,
    /// The gold answer as cleaned.
    pub gold: Option<String>,
    /// The response's answer as extracted and cleaned; `None` when it gives none.
    pub pred: Option<String>,
}

/// A stretch of the text that may hold the answer, and where it ends (the rightmost wins).
#[derive(Clone, Debug)]
struct Candidate {
    start: usize,
    end: usize,
    latex: String,
}

/// Decides whether `response` gives the gold answer `gold` (a bare answer, LaTeX, or a whole
/// solution ending in `\boxed{}`).
pub fn verify(gold: &str, response: &str) -> Verdict {
    // A gold with its own delimiters or box is read as it is; a bare one as math. A `\$` is
    // a dollar sign, not a delimiter (MATH's `\$15,\!000`).
    let delimited =
        gold.replace("\\$", "").contains('$') || gold.contains("\\boxed") || gold.contains("\\(");
    let gold_text = if delimited {
        gold.to_string()
    } else {
        format!("${gold}$")
    };
    let golds = candidates(&gold_text);
    let mut preds = candidates(response);
    // A response that is only a short bare answer (`startctl grade` of answers made
    // elsewhere: `5\sqrt{2}`, `(1,2)`) is the answer itself, before any number in it.
    let bare = response.trim();
    let is_bare = !bare.is_empty()
        && bare.len() <= 100
        && !bare.contains('\n')
        && !bare.contains('$')
        && !bare.contains("\\(")
        && !bare.contains("\\[")
        && !bare.contains("\\boxed")
        && !has_words(bare);
    if is_bare {
        preds.insert(
            0,
            Candidate {
                start: 0,
                end: bare.len(),
                latex: bare.to_string(),
            },
        );
    }
    let gold_parsed = first_parsed(&golds);
    let pred_parsed = first_parsed(&preds);
    let gold_clean = gold_parsed
        .as_ref()
        .map(|(s, _)| s.clone())
        .or_else(|| golds.first().map(|c| latex::clean(&c.latex)));
    let pred_clean = pred_parsed
        .as_ref()
        .map(|(s, _)| s.clone())
        .or_else(|| preds.first().map(|c| latex::clean(&c.latex)));
    let outcome = match (&gold_parsed, &pred_parsed) {
        (Some((gs, g)), Some((ps, p))) => {
            let direct = compare::values(g, p);
            // `1,22` is 1.22 where the other side is one decimal number, either way round.
            let decimal = || match (compare::decimal_comma(gs, p), compare::decimal_comma(ps, g)) {
                (Some(g2), _) => compare::values(&g2, p),
                (None, Some(p2)) => compare::values(g, &p2),
                (None, None) => Cmp::Different,
            };
            match direct {
                Cmp::Equal(_) => direct,
                _ => match decimal() {
                    Cmp::Equal(_) => Cmp::Equal("decimal comma"),
                    _ => direct,
                },
            }
        }
        // What does not parse is compared as text: the same text or different.
        _ => match (&gold_clean, &pred_clean) {
            (Some(g), Some(p)) if !g.is_empty() && g == p => Cmp::Equal("string"),
            _ => Cmp::Different,
        },
    };
    // Two answers that clean to the same text are the same answer whatever they parse to.
    let outcome = match (outcome, &gold_clean, &pred_clean) {
        (Cmp::Equal(_), _, _) => outcome,
        (_, Some(g), Some(p)) if !g.is_empty() && g == p => Cmp::Equal("string"),
        _ => outcome,
    };
    Verdict {
        outcome,
        gold: gold_clean,
        pred: pred_clean,
    }
}

/// Whether `s` holds a word (two letters or more in a row) outside LaTeX commands: then it is
/// a sentence, not a bare answer.
fn has_words(s: &str) -> bool {
    let mut run = 0;
    let mut in_command = false;
    for c in s.chars() {
        if c == '\\' {
            in_command = true;
            run = 0;
        } else if c.is_ascii_alphabetic() {
            if !in_command {
                run += 1;
                if run >= 2 {
                    return true;
                }
            }
        } else {
            in_command = false;
            run = 0;
        }
    }
    false
}

/// The first candidate that parses, with its cleaned text.
fn first_parsed(cands: &[Candidate]) -> Option<(String, expr::Value)> {
    cands.iter().find_map(|c| {
        let clean = latex::clean(&c.latex);
        parse::parse(&clean).ok().map(|v| (clean, v))
    })
}

/// The answer a response gives, extracted and cleaned, for display and the sympy fallback.
pub fn extract_answer(text: &str) -> Option<String> {
    candidates(text).first().map(|c| latex::clean(&c.latex))
}

/// Where the answer may be, best first: Math-Verify's priority levels, the rightmost match
/// first within a level.
fn candidates(text: &str) -> Vec<Candidate> {
    let spans = start_schemas::answer::math_spans(text);
    let envs = join_runs(text, env_spans(text, &spans));
    let numbers = numbers(text);
    let mut levels: Vec<Vec<Candidate>> = vec![Vec::new(); 4];
    // 1. `\boxed{}` (several joined by "and", "or", "," are one answer), and "final answer …
    //    is" followed by math or a number.
    levels[0].extend(boxed(text, &spans));
    let lower = text.to_ascii_lowercase();
    for (at, _) in lower.match_indices("final answer") {
        // 100 bytes on, moved back to a character's start: the text after "final answer" may
        // be any language (found by the fuzz campaign: a multi-byte character there panicked).
        let mut window_end = (at + 12 + 100).min(text.len());
        while !text.is_char_boundary(window_end) {
            window_end -= 1;
        }
        if let Some(is) = lower[at + 12..window_end].find(" is") {
            let after = at + 12 + is + 3;
            let rest = &text[after..];
            let skipped = rest.len() - rest.trim_start_matches([':', ' ', '\n']).len();
            if let Some(c) = starting_at(&envs, &numbers, after + skipped) {
                levels[0].push(c);
            }
        }
    }
    // 2. "answer:" then, within 50 characters, math or a number; 3. the same after "answer".
    for (at, _) in lower.match_indices("answer") {
        let after = at + 6;
        let colon = text[after..].starts_with(':');
        let level = if colon { 1 } else { 2 };
        if let Some(c) = within(&envs, &numbers, after, 50) {
            levels[level].push(c);
        }
    }
    // 4. Any math, or any number.
    levels[3].extend(envs.iter().cloned());
    levels[3].extend(numbers.iter().cloned());
    let mut out = Vec::new();
    for mut level in levels {
        level.sort_by_key(|c| std::cmp::Reverse(c.end));
        out.extend(level);
    }
    out
}

/// The env or number that starts at `at` (after spaces).
fn starting_at(envs: &[Candidate], numbers: &[Candidate], at: usize) -> Option<Candidate> {
    envs.iter()
        .chain(numbers)
        .filter(|c| c.start == at)
        .max_by_key(|c| c.end)
        .cloned()
}

/// The first env or number that starts within `window` bytes after `at`.
fn within(
    envs: &[Candidate],
    numbers: &[Candidate],
    at: usize,
    window: usize,
) -> Option<Candidate> {
    envs.iter()
        .chain(numbers)
        .filter(|c| c.start >= at && c.start <= at + window)
        .min_by_key(|c| (c.start, std::cmp::Reverse(c.end)))
        .cloned()
}

/// A found piece of math: `[start, end)` of the whole match and its inner LaTeX.
#[derive(Clone, Debug)]
struct Span {
    start: usize,
    end: usize,
    inner: String,
}

/// Math in the text: the spans `math` found (`$$…$$` and `\[…\]` across lines, `$…$` and
/// `\(…\)` within a line) and a bare `\frac{1}{2}` outside them; [`join_runs`] then takes a `%`
/// or "percent" after each and joins those separated by "and", "or" or "," into one answer.
fn env_spans(text: &str, math: &[std::ops::Range<usize>]) -> Vec<Span> {
    // The delimited spans are found as the importers find them (one scanner for both).
    let mut spans: Vec<Span> = math
        .iter()
        .map(|r| {
            let whole = &text[r.clone()];
            let open = if whole.starts_with("$$") || whole.starts_with('\\') {
                2
            } else {
                1
            };
            Span {
                start: r.start,
                end: r.end,
                inner: whole[open..whole.len() - open].to_string(),
            }
        })
        .collect();
    // A bare `\frac{a}{b}` of plain numbers outside them, with its sign.
    let mut fracs = Vec::new();
    for (i, _) in text.match_indices("\\frac{") {
        if (i > 0 && text.as_bytes()[i - 1] == b'\\')
            || spans.iter().any(|s| s.start <= i && i < s.end)
        {
            continue;
        }
        let rest = &text[i + 5..];
        let Some((a, tail)) = start_schemas::answer::brace_group(rest) else {
            continue;
        };
        let Some((d, tail)) = start_schemas::answer::brace_group(tail) else {
            continue;
        };
        let plain = |s: &str| {
            !s.is_empty()
                && s.trim_start_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.')
        };
        if plain(a) && plain(d) {
            let start = if i > 0 && text.as_bytes()[i - 1] == b'-' {
                i - 1
            } else {
                i
            };
            let end = text.len() - tail.len();
            fracs.push(Span {
                start,
                end,
                inner: text[start..end].to_string(),
            });
        }
    }
    spans.extend(fracs);
    spans.sort_by_key(|s| s.start);
    spans
}

/// Joins spans separated only by "and", "or", "," into one answer (a list), and takes a
/// percent sign right after a span into it.
fn join_runs(text: &str, spans: Vec<Span>) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut k = 0;
    while k < spans.len() {
        let mut run = vec![with_percent(text, &spans[k])];
        let mut end = run[0].1;
        let mut j = k + 1;
        while j < spans.len() {
            let gap = text[end..spans[j].start].trim();
            let joins = matches!(gap, "," | "and" | "or" | ", and" | ", or" | ",and" | ",or");
            if !joins {
                break;
            }
            let (inner, e) = with_percent(text, &spans[j]);
            run.push((inner, e));
            end = e;
            j += 1;
        }
        let latex = run
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        out.push(Candidate {
            start: spans[k].start,
            end,
            latex,
        });
        k = j;
    }
    out
}

fn with_percent(text: &str, s: &Span) -> (String, usize) {
    let rest = &text[s.end..];
    let trimmed = rest.trim_start();
    let skip = rest.len() - trimmed.len();
    for p in ["\\%", "%", "percent"] {
        if trimmed.starts_with(p) {
            return (format!("{}%", s.inner), s.end + skip + p.len());
        }
    }
    (s.inner.clone(), s.end)
}

/// The boxes of the text as answers: each run of boxes that Math-Verify would read as one
/// answer ([`start_schemas::answer::box_runs`]: `\boxed{-2} and \boxed{1}` is the list `-2, 1`,
/// the same content boxed twice in a row once), a `%` after a box taken into it.
fn boxed(text: &str, math: &[std::ops::Range<usize>]) -> Vec<Candidate> {
    let all = start_schemas::answer::boxes(text);
    let spans: Vec<Span> = all
        .iter()
        .map(|b| Span {
            start: b.start,
            end: b.end,
            inner: b.inner.clone(),
        })
        .collect();
    start_schemas::answer::box_runs_in(text, &all, math)
        .into_iter()
        .map(|run| {
            let mut parts: Vec<(String, usize)> = Vec::new();
            for span in &spans[run.clone()] {
                let (latex, end) = with_percent(text, span);
                if parts.last().is_none_or(|(p, _)| *p != latex) {
                    parts.push((latex, end));
                }
            }
            Candidate {
                start: spans[run.start].start,
                end: parts.last().map_or(spans[run.end - 1].end, |p| p.1),
                latex: parts
                    .iter()
                    .map(|(s, _)| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
        .collect()
}

/// Plain numbers in the text (outside math or not): integers with thousands separators,
/// decimals (a decimal comma too, `1000,99`), leading-dot decimals, a percent after them, and
/// simple arithmetic of numbers (`1/2`, `3 + 4`); each must start the text or follow a space,
/// `=`, `(` or a currency sign, so that `X2Y` yields nothing.
fn numbers(text: &str) -> Vec<Candidate> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // The end of the last run scanned for arithmetic that held no operator.
    let mut no_operator_until = 0;
    while i < b.len() {
        let prev_ok = i == 0 || {
            let p = text[..i].chars().next_back().unwrap_or(' ');
            p.is_whitespace() || matches!(p, '=' | '(' | '$' | '€' | '£' | '¥' | '*')
        };
        let starts = b[i].is_ascii_digit()
            || (b[i] == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
            || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        if !(prev_ok && starts) {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let start = i;
        let mut j = i;
        if b[j] == b'-' {
            j += 1;
        }
        let digits_end = |mut k: usize| {
            while k < b.len() && b[k].is_ascii_digit() {
                k += 1;
            }
            k
        };
        j = digits_end(j);
        // Thousands groups `1,234,567` / `1 234 567`.
        let first = j - start - usize::from(b[start] == b'-');
        let mut groups = 0;
        if (1..=3).contains(&first) {
            loop {
                if j + 4 <= b.len()
                    && (b[j] == b',' || b[j] == b' ')
                    && b[j + 1..j + 4].iter().all(u8::is_ascii_digit)
                    && b.get(j + 4).is_none_or(|c| !c.is_ascii_digit())
                {
                    j += 4;
                    groups += 1;
                } else {
                    break;
                }
            }
        }
        let mut number = text[start..j].replace([',', ' '], "");
        // A decimal part, with a point or (without thousands groups) a comma.
        if j + 1 < b.len()
            && (b[j] == b'.' || (b[j] == b',' && groups == 0))
            && b[j + 1].is_ascii_digit()
        {
            let k = digits_end(j + 1);
            number.push('.');
            number.push_str(&text[j + 1..k]);
            j = k;
        }
        // Simple arithmetic after it: `1/2`, `3 + 4 * 2`. A run of digits, spaces and
        // brackets without an operator is scanned once, not again from each number in it
        // (`2 2 2 …` made this quadratic: found by the fuzz campaign).
        let mut k = j;
        let mut expr_end = j;
        if j >= no_operator_until {
            while k < b.len() && (b[k].is_ascii_digit() || b" +-*/^().".contains(&b[k])) {
                k += 1;
                if b[k - 1].is_ascii_digit() || b[k - 1] == b')' {
                    expr_end = k;
                }
            }
            if !b[j..k].iter().any(|c| b"+-*/^".contains(c)) {
                no_operator_until = k;
                expr_end = j;
            }
        }
        let arithmetic = &text[j..expr_end];
        let latex = if arithmetic.trim().chars().any(|c| "+-*/^".contains(c))
            && arithmetic.chars().any(|c| c.is_ascii_digit())
        {
            j = expr_end;
            format!("{number}{arithmetic}")
        } else {
            number
        };
        let rest = &text[j..];
        let trimmed = rest.trim_start();
        let mut end = j;
        let mut latex = latex;
        for p in ["%", "percent", "percentage", "pct"] {
            // The word's length, not the rest of the text, is lowercased and compared.
            if trimmed
                .as_bytes()
                .get(..p.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(p.as_bytes()))
            {
                latex.push('%');
                end = j + (rest.len() - trimmed.len()) + p.len();
                break;
            }
        }
        out.push(Candidate { start, end, latex });
        i = j.max(i + 1);
    }
    out
}

/// An answer's LaTeX as sympy source, for the symbolic fallback in the sandbox.
pub fn latex_to_sympy(answer: &str) -> String {
    let mut s = latex::clean(answer);
    while let Some(i) = s.rfind("\\frac") {
        let rest = &s[i + 5..];
        let Some((a, r)) = start_schemas::answer::brace_group(rest.trim_start()) else {
            break;
        };
        let Some((b, r)) = start_schemas::answer::brace_group(r.trim_start()) else {
            break;
        };
        let replaced = format!("(({a})/({b}))");
        let end = s.len() - r.len();
        s.replace_range(i..end, &replaced);
    }
    while let Some(i) = s.rfind("\\sqrt") {
        let rest = &s[i + 5..];
        let Some((a, r)) = start_schemas::answer::brace_group(rest.trim_start()) else {
            break;
        };
        let replaced = format!("sqrt({a})");
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
        ("\\cdot", "*"),
        ("\\times", "*"),
        ("^", "**"),
        ("{", "("),
        ("}", ")"),
        ("\\", ""),
    ] {
        s = s.replace(from, to);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(gold: &str, response: &str) -> bool {
        matches!(verify(gold, response).outcome, Cmp::Equal(_))
    }

    #[test]
    fn the_answer_is_found_where_models_put_it() {
        assert!(eq("5", "The final answer is $\\boxed{5}$."));
        assert!(eq("5", "$\\boxed{3}$ no wait $\\boxed{5}$"));
        assert!(eq("5", "Answer: 5"));
        assert!(eq("5", "so $x=3$ and then the answer is $5$"));
        assert!(eq("5", "\\[5\\]"));
        assert!(eq("5", "$$\n5\n$$"));
        assert!(eq("2", "\\boxed{\n2\n}"));
        assert!(eq("\\frac{1}{2}", "The answer is \\(\\dfrac12\\)."));
        assert!(eq("1,-2", "$x = 1$ or $x = -2$"));
        assert!(!eq("5", "The answer is 6."));
        assert!(eq("$\\frac{1}{2}$", "\\boxed{0.5}"));
        assert!(eq("We get $\\boxed{7}$.", "So 7."));
        // Text in any language after "final answer", a multi-byte character where the
        // 100-byte window ends (the fuzz campaign's first find).
        let text = format!(
            "The final answer{}{} so $5$",
            " ".repeat(99),
            "é".repeat(40)
        );
        assert!(eq("5", &text));
        assert!(eq("7", &format!("final answer{} is 7", "数".repeat(60))));
    }

    #[test]
    fn real_output_forms() {
        assert!(eq("7425000", "\\boxed{7,425,000}"));
        assert!(eq("1000", "\\boxed{1 000}"));
        assert!(eq("1000.99", "\\boxed{1000,99}"));
        assert!(eq("0.5", "\\boxed{.5}"));
        assert!(eq("5", "\\boxed{\\$5}"));
        assert!(eq("5", "\\boxed{5\\text{ miles}}"));
        assert!(eq("5", "\\boxed{5 m^2}"));
        assert!(eq("28\\%", "\\boxed{28 percent}"));
        assert!(eq("\\frac{3}{2}", "\\boxed{\\frac32}"));
        assert!(eq(
            "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
            "$\\begin{bmatrix}1\\\\2\\end{bmatrix}$"
        ));
        assert!(eq("[2,5)", "\\boxed{[2, 5)}"));
        assert!(!eq("[2,5)", "\\boxed{[2, 5]}"));
        assert!(!eq("\\frac{1}{3}", "\\boxed{0.334}"));
        assert!(!eq("3, 5, 7", "\\boxed{3, 5}"));
        assert!(eq("5", "\\boxed{5 €}"));
        assert!(eq("5", "\\boxed{5\\textnormal{ cm}}"));
        assert!(eq("\\frac{1}{2}", "\\boxed{\\cfrac{1}{2}}"));
        assert!(eq("\\frac{1}{2}", "\\boxed{\\boxed{\\frac{1}{2}}}"));
        assert!(eq("5", "Thus\n\\[\n5\n\\]"));
        assert!(eq("(1,2)", "$\\left( 1, 2 \\right)$"));
        assert!(eq("\\frac{1}{2}", "The final answer is $\\frac{1}{2}$"));
        assert!(eq("\\frac{1}{2}", "Answer: \\(\\frac{1}{2}\\)"));
        assert!(eq("(1, 2]", "\\boxed{(1, 2]}"));
        assert!(!eq("(1, 2]", "\\boxed{(1, 2)}"));
        assert!(eq("1.5", "\\boxed{1.5}") && !eq("1.5", "\\boxed{1.501}"));
        assert!(eq("1000", "\\boxed{1\\,000}"));
        assert!(eq("\\frac{\\sqrt{3}}{2}", "\\boxed{\\frac{1}{2}\\sqrt{3}}"));
    }

    /// The forms Math-Verify's own tables showed missing (issue 31), each with a near miss.
    #[test]
    fn forms_real_outputs_have() {
        // Decimal commas, either way round; a leading zero never starts thousands.
        assert!(eq("1,22", "1.22") && eq("0.111", "$0,111$") && !eq("1,22", "1.23"));
        // Percent words, `!=`, approximations after the exact value.
        assert!(eq("$28\\%$", "\\boxed{28 pct}") && eq("$28\\%$", "\\boxed{28 percentage}"));
        assert!(eq("$x \\neq 5$", "$x != 5$") && !eq("$x \\neq 5$", "$x != 6$"));
        assert!(eq("$x = 1/3$", "$x = 5+5+1 = 1/3 \\approx 11$"));
        assert!(eq("$11$", "$x\\approx11$") && !eq("$1/3$", "$x=1/4\\approx0.33$"));
        // Matrices written as a sum or a product.
        let m = "$\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}$";
        assert!(eq(m, "$\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}$"));
        assert!(!eq(m, "$\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 9\\end{pmatrix}$"));
        assert!(eq(
            "$\\begin{pmatrix}2 & 0 \\\\ 0 & 2\\end{pmatrix}$",
            "$2 \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$"
        ));
        // Intervals against the relations they solve, one way.
        assert!(
            eq("$-2 \\le x \\le 7$", "$x \\in [-2,7]$") && !eq("$-2 \\le x \\le 7$", "$[-2,7)$")
        );
        assert!(eq("$0<f(x)<1$", "$(0,1)$") && eq("$x > 3$", "$(3, \\infty)$"));
        assert!(eq("$1\\leq|z|\\leq 2$", "$z \\in [-2, -1] \\cup [1, 2]$"));
        // Labelled tuples, semicolon groups, ratios, a label on the left.
        assert!(eq("$(p,q)=(3,2)$", "$\\boxed{(3, 2)}$") && !eq("$(p,q)=(3,2)$", "$(2,3)$"));
        assert!(eq("$p=5,q=2;p=7,q=2$", "$(5,2),(7,2)$") && !eq("$p=5,q=2;p=7,q=2$", "$(5,2)$"));
        assert!(
            eq("$S_{1}:S=7:32$", "$\\boxed{7:32}$") && !eq("$S_{1}:S=7:32$", "$\\boxed{32:7}$")
        );
        assert!(
            eq("$|AB|=1$", "$$1$$")
                && eq(
                    "$\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}$",
                    "$\\frac{1}{\\sqrt{6}}$"
                )
        );
        // Several boxes are one list, a repeated element one element.
        assert!(eq(
            "$${1,2,3}$$",
            "\\boxed{1} and \\boxed{2} and \\boxed{3}"
        ));
        assert!(eq("$(1,3)$", "${1,3}$") && eq("$(11,7)or(7,11)$", "$\\boxed{(7,11),\\ (11,7)}$"));
        assert!(eq("$(5, 8), (8, 5)$", "$\\boxed{(5, 8), (8, 5), (5, 8)}$"));
        assert!(!eq("$(5, 8), (8, 5)$", "$\\boxed{(5, 8)}$"));
        // Doubly escaped LaTeX, and a chat template's tail after the answer.
        assert!(eq(
            "$\\\\left(\\\\frac{1}{5},\\\\frac{1}{6}\\\\right)$",
            "$\\boxed{\\left( \\frac{1}{5}, \\frac{1}{6} \\right)}$"
        ));
        assert!(eq(
            "5",
            "So $\\boxed{5}$.<|im_end|>\n<|im_start|>user\nThanks"
        ));
        assert!(eq("14916", "The final answer is $14 {, }916$."));
        // Units in each item of a list.
        assert!(eq("$\\boxed{35 cm} ++++++ \\boxed{4}$", "${35 cm,4}$"));
        // MATH's golds with an escaped dollar sign.
        assert!(eq("\\$15,\\!000", "\\boxed{15000}") && !eq("\\$15,\\!000", "\\boxed{15}"));
        assert!(eq("-\\$0.50", "\\boxed{-0.5}") && !eq("-\\$0.50", "\\boxed{0.5}"));
        assert!(eq(
            "\\overline{CD}",
            "so the answer is $\\boxed{\\overline{CD}}$, not 2009"
        ));
    }
}
