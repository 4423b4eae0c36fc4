//! Cleaning an extracted answer's LaTeX before it is parsed: delimiters, boxes, sizing and
//! spacing commands, fraction and binomial variants, degrees, currency, units and words around
//! the answer go; what is left is the mathematics.

use start_schemas::answer::brace_group;

/// Text commands whose braces hold words.
const TEXT_COMMANDS: [&str; 11] = [
    "\\textnormal",
    "\\textrm",
    "\\textbf",
    "\\textit",
    "\\textsf",
    "\\text",
    "\\mathrm",
    "\\mathbf",
    "\\mathit",
    "\\mbox",
    "\\operatorname",
];

/// Units and currency words that may follow a number, in text or not. Single letters are
/// units only when written apart from the number (`5 m`, not `5m`, which is `5 m` as a product
/// too, but `5x` must stay a product).
const UNITS: &[&str] = &[
    "cm",
    "mm",
    "km",
    "m",
    "meter",
    "meters",
    "metre",
    "metres",
    "centimeter",
    "centimeters",
    "millimeter",
    "millimeters",
    "kilometer",
    "kilometers",
    "in",
    "inch",
    "inches",
    "ft",
    "foot",
    "feet",
    "yd",
    "yard",
    "yards",
    "mi",
    "mile",
    "miles",
    "g",
    "gram",
    "grams",
    "kg",
    "kilogram",
    "kilograms",
    "mg",
    "lb",
    "lbs",
    "pound",
    "pounds",
    "oz",
    "ounce",
    "ounces",
    "s",
    "sec",
    "second",
    "seconds",
    "min",
    "minute",
    "minutes",
    "h",
    "hr",
    "hrs",
    "hour",
    "hours",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "dollar",
    "dollars",
    "cent",
    "cents",
    "euro",
    "euros",
    "unit",
    "units",
    "square",
    "sq",
    "cubic",
    "degree",
    "degrees",
    "mph",
    "kph",
    "l",
    "liter",
    "liters",
    "litre",
    "litres",
    "ml",
    "gallon",
    "gallons",
    "people",
    "students",
    "ways",
    "points",
    "times",
    "percent",
];

/// Cleans `answer` (the text inside the answer's delimiters or box).
pub fn clean(answer: &str) -> String {
    let trimmed = answer.trim();
    let mut s = if trimmed.contains("\\\\") {
        single_escapes(trimmed)
    } else {
        trimmed.to_string()
    };
    s = strip_delimiters(&s);
    s = unwrap(&s, &["\\boxed", "\\fbox"]);
    // Matrix row breaks `\\` must survive the spacing rules below (`\ ` is a space).
    s = s.replace("\\\\", "\u{1}");
    let ascii = s.is_ascii();
    let mut has_ascii = [false; 128];
    for b in s.bytes().filter(u8::is_ascii) {
        has_ascii[b as usize] = true;
    }
    for (from, to) in [
        ("−", "-"),
        ("–", "-"),
        ("×", "\\times "),
        ("·", "\\cdot "),
        ("÷", "\\div "),
        ("²", "^2"),
        ("³", "^3"),
        ("√", "\\sqrt"),
        ("π", "\\pi "),
        ("∞", "\\infty "),
        ("≤", "\\le "),
        ("≥", "\\ge "),
        ("≠", "\\ne "),
        ("°", ""),
        ("€", ""),
        ("£", ""),
        ("¥", ""),
        ("\\%", "%"),
        ("\\$", ""),
        ("{,}", ""),
        ("!=", "\\ne "),
        // MATH writes thousands as `10,\!080`.
        (",\\!", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\cfrac", "\\frac"),
        ("\\dbinom", "\\binom"),
        ("\\tbinom", "\\binom"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\circ", ""),
        ("\\degree", ""),
        ("\\displaystyle", ""),
        ("\\textstyle", ""),
        ("\\left", ""),
        ("\\right", ""),
        ("\\bigl", ""),
        ("\\bigr", ""),
        ("\\Bigl", ""),
        ("\\Bigr", ""),
        ("\\biggl", ""),
        ("\\biggr", ""),
        ("\\big", ""),
        ("\\Big", ""),
        ("\\qquad", " "),
        ("\\quad", " "),
        ("\\!", ""),
        ("\\,", " "),
        ("\\;", " "),
        ("\\:", " "),
        ("\\ ", " "),
        ("~", " "),
        ("\\leq", "\\le "),
        ("\\geq", "\\ge "),
        ("\\neq", "\\ne "),
        ("\\lt", "<"),
        ("\\gt", ">"),
        ("\\dots", ""),
        ("\\ldots", ""),
        ("\\cdots", ""),
    ] {
        // Most answers are short ASCII with few commands: a pattern that starts with a
        // character the answer lacks is skipped without a substring search.
        let first = from.chars().next().expect("no empty pattern");
        let present = if first.is_ascii() {
            has_ascii[first as usize]
        } else {
            !ascii
        };
        if present && s.contains(from) {
            s = s.replace(from, to);
            for b in to.bytes() {
                has_ascii[b as usize] = true;
            }
        }
    }
    // `\le` followed by letters (`\left` is gone already) keeps its own word: `\lex` is not a
    // thing, so nothing to guard here beyond the space added above.
    s = s.replace('\u{1}', "\\\\");
    // Each step below looks for what it rewrites first: most answers need none of them.
    if s.contains('{') && s.contains(',') {
        s = braced_commas(&s);
    }
    s = expand_frac_shorthand(&s);
    s = text_commands(&s);
    if s.contains("or") || s.contains("and") {
        s = join_words(&s);
    }
    if s.contains("\\approx") {
        s = drop_approximations(&s);
    }
    if s.starts_with('{') {
        s = unwrap_brace_list(&s);
    }
    if s.contains("pct") || s.contains("percent") {
        s = percent_words(&s);
    }
    s = per_item(&s, strip_units);
    s = strip_words(&s);
    let t = s.trim().trim_end_matches(['.', ';']).trim();
    // A trailing comma or a lone leading "=" say nothing.
    let t = t.trim_end_matches(',').trim();
    let t = t.strip_prefix('=').unwrap_or(t).trim();
    t.to_string()
}

/// LaTeX escaped twice, as answers copied out of JSON or Python strings are (`\\frac{1}{2}`,
/// `\\left(`): a doubled backslash before a command's letters is one. A matrix's row break
/// `\\` is followed by a space, a digit or a sign, never by letters, and stays.
fn single_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\\\") {
        let after = &rest[i + 2..];
        out.push_str(&rest[..i]);
        if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push('\\');
        } else {
            out.push_str("\\\\");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A thousands separator in braces with spaces in it: `14 {, }916`, `1{ ,}000`.
fn braced_commas(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(close) if after[..close].trim() == "," => {
                out.push_str(rest[..i].trim_end());
                rest = after[close + 1..].trim_start();
            }
            _ => {
                out.push_str(&rest[..i + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// An approximation after an exact answer is not the answer: `\frac{1}{3} \approx 0.33` and
/// `x = 1/3 \approx 0.3` keep what comes before `\approx`, up to the next top-level comma.
fn drop_approximations(s: &str) -> String {
    let mut out = s.to_string();
    let mut from = 0;
    while let Some(i) = out[from..].find("\\approx").map(|i| i + from) {
        // What the approximation follows, back to the list's previous comma: nothing, or a
        // bare name (`x \approx 11`, where it says what x is), leaves it as a relation.
        let item = out[..i].rsplit(',').next().unwrap_or_default().trim();
        let named = item
            .chars()
            .all(|c| c.is_alphabetic() || c == '_' || c == '{' || c == '}' || c == ' ');
        if item.is_empty() || named {
            from = i + "\\approx".len();
            continue;
        }
        let mut depth = 0i32;
        let mut end = out.len();
        for (k, c) in out[i..].char_indices() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                ',' if depth <= 0 => {
                    end = i + k;
                    break;
                }
                _ => {}
            }
            if depth < 0 {
                end = i + k;
                break;
            }
        }
        out.replace_range(i..end, "");
        from = i;
    }
    out
}

/// The words "or" and "and" written between answers without `\text` (`(11,7)or(7,11)`) join
/// them, as a comma does. Words inside a `\text{}` (a text answer) are left alone.
fn join_words(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if s[i..].starts_with("\\text{") {
            let end = brace_group(&s[i + 5..]).map_or(s.len(), |(_, tail)| s.len() - tail.len());
            out.push_str(&s[i..end]);
            i = end;
            continue;
        }
        let word = ["and", "or"].into_iter().find(|w| {
            s[i..].starts_with(w)
                && (i == 0 || !(b[i - 1].is_ascii_alphabetic() || b[i - 1] == b'\\'))
                && !b.get(i + w.len()).is_some_and(u8::is_ascii_alphabetic)
        });
        if let Some(w) = word {
            out.push(',');
            i += w.len();
            continue;
        }
        let ch = s[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A whole answer written as a braced list, `{1, 2, 3}` (braces a model meant as a set's), is
/// the list.
fn unwrap_brace_list(s: &str) -> String {
    let t = s.trim();
    if let Some((inner, tail)) = t.starts_with('{').then(|| brace_group(t)).flatten() {
        if tail.trim().is_empty() && top_level_commas(inner) > 0 {
            return inner.to_string();
        }
    }
    s.to_string()
}

fn top_level_commas(s: &str) -> usize {
    let mut depth = 0i32;
    let mut n = 0;
    for c in s.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => n += 1,
            _ => {}
        }
    }
    n
}

/// `28 pct`, `28 percentage`, `28 percent` after a number: a percent sign.
fn percent_words(s: &str) -> String {
    let mut out = s.to_string();
    for word in ["percentage", "percent", "pct"] {
        let mut from = 0;
        while let Some(i) = out[from..].find(word).map(|i| i + from) {
            let before = out[..i].trim_end();
            let after_ok = !out[i + word.len()..].starts_with(|c: char| c.is_ascii_alphabetic());
            let letter_before = out[..i].ends_with(|c: char| c.is_ascii_alphabetic());
            if before.ends_with(|c: char| c.is_ascii_digit()) && after_ok && !letter_before {
                let start = before.len();
                out.replace_range(start..i + word.len(), "%");
                from = start + 1;
            } else {
                from = i + word.len();
            }
        }
    }
    out
}

/// `f` applied to each top-level item of a list (`35 cm, 4`), the separators kept.
fn per_item(s: &str, f: fn(&str) -> String) -> String {
    if top_level_commas(s) == 0 {
        return f(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut depth = 0i32;
    let mut start = 0;
    for (k, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push_str(&f(&s[start..k]));
                out.push(',');
                start = k + 1;
            }
            _ => {}
        }
    }
    out.push_str(&f(&s[start..]));
    out
}

/// Removes `$…$`, `$$…$$`, `\(…\)` and `\[…\]` around the whole answer.
fn strip_delimiters(s: &str) -> String {
    let mut t = s.trim();
    loop {
        let before = t;
        for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
            if t.len() >= open.len() + close.len() && t.starts_with(open) && t.ends_with(close) {
                t = t[open.len()..t.len() - close.len()].trim();
            }
        }
        if t == before {
            break;
        }
    }
    t.to_string()
}

/// Replaces each `\cmd{inner}` of `cmds` by `inner`.
fn unwrap(s: &str, cmds: &[&str]) -> String {
    let mut out = s.to_string();
    for cmd in cmds {
        let mut from = 0;
        while let Some(i) = out[from..].find(cmd).map(|i| i + from) {
            let after = i + cmd.len();
            let rest = &out[after..];
            let trimmed = rest.trim_start();
            let open = after + (rest.len() - trimmed.len());
            match brace_group(&out[open..]) {
                Some((inner, tail)) => {
                    let (inner, close) = (inner.to_string(), out.len() - tail.len());
                    out.replace_range(i..close, &inner);
                    from = i;
                }
                None => from = after,
            }
        }
    }
    out
}

/// The longest of [`TEXT_COMMANDS`], in bytes.
const TEXT_COMMAND_MAX_LEN: usize = {
    let (mut longest, mut i) = (0, 0);
    while i < TEXT_COMMANDS.len() {
        if TEXT_COMMANDS[i].len() > longest {
            longest = TEXT_COMMANDS[i].len();
        }
        i += 1;
    }
    longest
};

/// The first text command at or after `from` (the longest at its place), found in one pass
/// over the backslashes: a search per command scanned the rest once for each of the eleven.
fn next_text_command(s: &str, from: usize) -> Option<(usize, &'static str)> {
    let mut at = from;
    while let Some(off) = s[at..].find('\\') {
        let i = at + off;
        let here = &s[i..];
        if let Some(cmd) = TEXT_COMMANDS
            .iter()
            .filter(|c| here.starts_with(**c))
            .max_by_key(|c| c.len())
        {
            return Some((i, cmd));
        }
        at = i + 1;
    }
    None
}

/// `\text{...}` and its kin. Words joining answers (`or`, `and`) become commas; a unit or a
/// word after the mathematics goes; any other text stays as `\text{words}`, which the parser
/// reads as one symbol (a text answer such as `\text{Evelyn}`).
fn text_commands(s: &str) -> String {
    let mut out = s.to_string();
    let mut from = 0;
    while let Some((i, cmd)) = next_text_command(&out, from) {
        let after = i + cmd.len();
        let rest = &out[after..];
        let trimmed = rest.trim_start();
        let open = after + (rest.len() - trimmed.len());
        let Some((inner, tail)) = brace_group(&out[open..]) else {
            out.replace_range(i..after, "");
            // Only a command that ends across the join can be new before `i`: look again
            // from a command's length back, not from the last group (a text of thousands of
            // brace-less `\text` scanned its whole head again after each: quadratic).
            let mut back = i.saturating_sub(TEXT_COMMAND_MAX_LEN - 1).max(from);
            while !out.is_char_boundary(back) {
                back -= 1;
            }
            from = back;
            continue;
        };
        let words = inner.trim().to_string();
        let close = out.len() - tail.len();
        let before = out[..i].trim_end();
        let lower = words.to_lowercase();
        let numeric = !words.is_empty()
            && words
                .chars()
                .all(|c| c.is_ascii_digit() || " .,-+/".contains(c));
        let replacement = if matches!(lower.as_str(), "or" | "and" | "," | ", or" | ", and") {
            ",".to_string()
        } else if numeric {
            // `\text{12}` is the number 12.
            words
        } else if words.is_empty() {
            String::new()
        } else if !before.is_empty()
            && !before.ends_with(['(', '[', ',', '=', '{'])
            && (is_unit_text(&lower) || tail.trim().is_empty())
        {
            // A unit, or words after the mathematics ("12 \text{apples}"): the number is
            // the answer, as Math-Verify reads it.
            String::new()
        } else if cmd == "\\mathrm"
            || cmd == "\\mathbf"
            || cmd == "\\mathit"
            || cmd == "\\operatorname"
        {
            // Roman or bold mathematics (`\mathrm{d}x`, `\mathbf{v}`): the letters themselves.
            words
        } else {
            format!("\\text{{{words}}}")
        };
        out.replace_range(i..close, &replacement);
        from = i + replacement.len();
        if replacement.starts_with("\\text{") {
            from = i + replacement.len();
        }
    }
    out
}

/// Whether text after the mathematics is a unit or a word about it ("cm", "square units",
/// "miles per hour", "m^2").
fn is_unit_text(lower: &str) -> bool {
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == '/' || c == '.' || c == '-')
        .filter(|w| !w.is_empty())
        .collect();
    !words.is_empty()
        && words.iter().all(|w| {
            let base = w
                .trim_end_matches(|c: char| c == '^' || c.is_ascii_digit() || c == '{' || c == '}');
            base.chars().all(|c| c.is_alphabetic())
                && (UNITS.contains(&base) || matches!(base, "per" | "of" | "a" | "the"))
        })
}

/// A unit written after the number without `\text`: `5 cm`, `10 inches`, `5 m^2`, `7cm`,
/// `12 square units`.
fn strip_units(s: &str) -> String {
    let mut t = s.trim_end();
    let mut stripped = false;
    loop {
        // The trailing run of letters, with an optional exponent.
        let core = t
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '{' || c == '}')
            .strip_suffix('^')
            .unwrap_or(t);
        let word_start = core
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphabetic())
            .last()
            .map_or(core.len(), |(i, _)| i);
        let word = &core[word_start..];
        if word.is_empty() || word_start == 0 {
            break;
        }
        let before = &core[..word_start];
        let spaced = before.ends_with(char::is_whitespace);
        let unit = UNITS.contains(&word.to_lowercase().as_str())
            && (word.len() >= 2 || spaced)
            && !before.ends_with('\\');
        if !unit {
            break;
        }
        let rest = before.trim_end();
        let number_before = rest.ends_with(|c: char| c.is_ascii_digit() || c == '}' || c == ')');
        let word_before = rest.ends_with(|c: char| c.is_ascii_alphabetic()) && spaced;
        if !(number_before || word_before) {
            break;
        }
        t = rest;
        stripped = true;
        if number_before {
            break;
        }
    }
    // Only a run of units that ends at a number goes.
    if stripped && t.ends_with(|c: char| c.is_ascii_digit() || c == '}' || c == ')') {
        t.to_string()
    } else {
        s.to_string()
    }
}

/// Rewrites `\frac12` and `\frac1{x}` shorthands to `\frac{1}{2}`, `\frac{1}{x}`.
fn expand_frac_shorthand(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\frac") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        for _ in 0..2 {
            let trimmed = rest.trim_start();
            match trimmed.chars().next() {
                Some('{') => {
                    let end = brace_group(trimmed)
                        .map_or(trimmed.len(), |(_, tail)| trimmed.len() - tail.len());
                    out.push_str(&trimmed[..end]);
                    rest = &trimmed[end..];
                }
                Some(ch) if ch.is_ascii_alphanumeric() => {
                    out.push('{');
                    out.push(ch);
                    out.push('}');
                    rest = &trimmed[ch.len_utf8()..];
                }
                _ => break,
            }
        }
    }
    out.push_str(rest);
    out
}

/// Words around the mathematics that a model adds: a leading "is", a trailing "only".
fn strip_words(s: &str) -> String {
    let mut t = s.trim();
    for lead in ["is ", "are ", "of "] {
        if let Some(r) = t.strip_prefix(lead) {
            t = r.trim_start();
        }
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::{clean, text_commands};

    /// A brace-less command is dropped, and a command the drop completes across the join is
    /// still read (the search resumes a command's length back, not at the drop).
    #[test]
    fn text_commands_read_what_a_dropped_brace_less_command_joins() {
        assert_eq!(
            text_commands("\\m\\textbox{cd}"),
            text_commands("\\mbox{cd}")
        );
        assert_eq!(text_commands("\\mbox{cd}"), "\\text{cd}");
        assert_eq!(text_commands("\\text \\text 5"), "  5");
        let many = "\\texty".repeat(4000);
        assert_eq!(text_commands(&many), "y".repeat(4000));
    }

    #[test]
    fn delimiters_boxes_and_spacing_go() {
        assert_eq!(clean("$\\boxed{\\dfrac{1}{2}}$"), "\\frac{1}{2}");
        assert_eq!(
            clean("\\[ \\left( 3, \\tfrac{\\pi}{2} \\right) \\]"),
            "( 3, \\frac{\\pi}{2} )"
        );
        assert_eq!(
            clean("\\frac32 + \\frac1{x}"),
            "\\frac{3}{2} + \\frac{1}{x}"
        );
        assert_eq!(clean("10,\\!080"), "10080");
        assert_eq!(clean("7{,}425{,}000"), "7425000");
        assert_eq!(clean("90^\\circ"), "90");
    }

    #[test]
    fn units_currency_and_text() {
        assert_eq!(clean("5\\text{ cm}"), "5");
        assert_eq!(clean("13\\textnormal{ miles}"), "13");
        assert_eq!(clean("\\$18.90"), "18.90");
        assert_eq!(clean("5 m^2"), "5");
        assert_eq!(clean("12 square units"), "12");
        assert_eq!(clean("7cm"), "7");
        assert_eq!(clean("5x"), "5x");
        assert_eq!(clean("2\\pi"), "2\\pi");
        assert_eq!(clean("\\text{Evelyn}"), "\\text{Evelyn}");
        assert_eq!(clean("x = 1 \\text{ or } x = -2"), "x = 1 , x = -2");
        assert_eq!(clean("28\\%"), "28%");
    }
}
