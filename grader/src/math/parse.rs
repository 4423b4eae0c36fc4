//! Cleaned answer LaTeX → [`Value`]: numbers, letters, `\frac`, `\sqrt`, powers, functions,
//! implicit products (`2x`, `3\sqrt{13}`, `(x+1)(x-1)`), percentages, relations, and the shapes
//! answers come in: `a, b` and `\{a, b\}` (sets), `(a, b)` (an open interval when it can be
//! one, else a tuple, as Math-Verify reads it), `[a, b)`, unions, matrices, `\pm`.
//!
//! Why one file over 600 lines: the grammar is one recursive descent, each precedence level
//! calling the next; split across files, following one expression would mean jumping between
//! them. Its tests (the last fifty lines) sit beside it.

use super::expr::{Const, Ex, Func, Interval, Num, Rat, Rel, Value};

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(String),
    Letter(char),
    Text(String),
    Cmd(String),
    Op(char),
}

/// Why an answer did not parse; such an answer is compared as text only.
#[derive(Debug)]
pub struct ParseError;

type R<T> = Result<T, ParseError>;

fn tokenize(s: &str) -> R<Vec<Tok>> {
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
fn merge_digit_groups(s: &str) -> String {
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
fn format_float(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

struct P {
    toks: Vec<Tok>,
    at: usize,
}

fn num(n: i128) -> Ex {
    Ex::Num(Num::Exact(Rat::int(n)))
}

fn inverse(e: Ex) -> Ex {
    match e.exact() {
        Some(r) if r.num != 0 => Ex::Num(Num::Exact(Rat::new(r.den, r.num).expect("non-zero"))),
        _ => Ex::Pow(Box::new(e), Box::new(num(-1))),
    }
}

fn expr(v: Value) -> R<Ex> {
    match v {
        Value::Expr(e) => Ok(e),
        _ => Err(ParseError),
    }
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn eat_op(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Op(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_cmd(&mut self, name: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Cmd(n)) if n == name) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, c: char) -> R<()> {
        if self.eat_op(c) {
            Ok(())
        } else {
            Err(ParseError)
        }
    }

    /// Items separated by `,` or `;`, up to a token that `stop` accepts (not consumed).
    fn list(&mut self, stop: &dyn Fn(Option<&Tok>) -> bool) -> R<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if stop(self.peek()) {
                break;
            }
            items.push(self.item()?);
            let semicolon_stops = stop(Some(&Tok::Op(';')));
            if !(self.eat_op(',') || (!semicolon_stops && self.eat_op(';'))) {
                break;
            }
        }
        Ok(items)
    }

    /// A relation chain, a union, or `x \in S` (which is S). A named tuple `(p, q) = (3, 2)`
    /// is its value, `(3, 2)`: the names only label it.
    fn item(&mut self) -> R<Value> {
        let first = self.union()?;
        if self.eat_cmd("in") {
            return self.union();
        }
        if names_only(&first) && self.peek() == Some(&Tok::Op('=')) {
            let save = self.at;
            self.at += 1;
            let value = self.union()?;
            if matches!(value, Value::Tuple(_) | Value::Interval(_) | Value::Set(_))
                && self.rel_op_ahead().is_none()
            {
                return Ok(value);
            }
            self.at = save;
        }
        let mut items = vec![];
        let mut ops = vec![];
        let mut current = first;
        while let Some(op) = self.rel_op() {
            items.push(expr(current)?);
            ops.push(op);
            current = self.union()?;
        }
        if ops.is_empty() {
            return Ok(current);
        }
        items.push(expr(current)?);
        Ok(Value::Rel { items, ops })
    }

    /// Whether a relation comes next, without taking it.
    fn rel_op_ahead(&mut self) -> Option<Rel> {
        let save = self.at;
        let op = self.rel_op();
        self.at = save;
        op
    }

    fn rel_op(&mut self) -> Option<Rel> {
        let op = match self.peek()? {
            Tok::Op('=') => Rel::Eq,
            Tok::Op('<') => {
                self.at += 1;
                return Some(if self.eat_op('=') { Rel::Le } else { Rel::Lt });
            }
            Tok::Op('>') => {
                self.at += 1;
                return Some(if self.eat_op('=') { Rel::Ge } else { Rel::Gt });
            }
            Tok::Cmd(c) => match c.as_str() {
                "le" => Rel::Le,
                "ge" => Rel::Ge,
                "ne" => Rel::Ne,
                "approx" | "equiv" => Rel::Eq,
                _ => return None,
            },
            _ => return None,
        };
        self.at += 1;
        Some(op)
    }

    fn union(&mut self) -> R<Value> {
        let first = self.sum()?;
        if !matches!(self.peek(), Some(Tok::Cmd(c)) if c == "cup") {
            return Ok(first);
        }
        let mut parts = vec![first];
        while self.eat_cmd("cup") {
            parts.push(self.sum()?);
        }
        Ok(Value::Union(parts))
    }

    /// Terms joined by `+`, `-`, `\pm`; a single non-expression term (a tuple, a set, a
    /// matrix) passes through.
    fn sum(&mut self) -> R<Value> {
        let mut negate = false;
        if self.eat_op('-') {
            negate = true;
        } else {
            self.eat_op('+');
        }
        let first = self.term()?;
        let mut first = if negate {
            match first {
                Value::Matrix(m) => matrix_product(Value::Expr(num(-1)), Value::Matrix(m))?,
                other => Value::Expr(expr(other)?.neg()),
            }
        } else {
            first
        };
        // A sum of matrices (`A + B` written out) is the matrix.
        while let Value::Matrix(m) = &first {
            let minus = match self.peek() {
                Some(Tok::Op('+')) => false,
                Some(Tok::Op('-')) => true,
                _ => break,
            };
            self.at += 1;
            let Value::Matrix(n) = self.term()? else {
                return Err(ParseError);
            };
            first = matrix_sum(m, &n, minus)?;
        }
        if !matches!(self.peek(), Some(Tok::Op('+' | '-')))
            && !matches!(self.peek(), Some(Tok::Cmd(c)) if c == "pm" || c == "mp")
        {
            return Ok(first);
        }
        let mut terms = vec![expr(first)?];
        // `a \pm b` is both `a + b` and `a - b`.
        let mut pm: Option<Vec<Ex>> = None;
        loop {
            if self.eat_op('+') {
                terms.push(expr(self.term()?)?);
            } else if self.eat_op('-') {
                terms.push(expr(self.term()?)?.neg());
            } else if self.eat_cmd("pm") || self.eat_cmd("mp") {
                let t = expr(self.term()?)?;
                pm.get_or_insert_with(Vec::new).push(t);
            } else {
                break;
            }
        }
        let base = if terms.len() == 1 {
            terms.pop().expect("one")
        } else {
            Ex::Add(terms)
        };
        match pm {
            None => Ok(Value::Expr(base)),
            Some(parts) => {
                let spread: Ex = if parts.len() == 1 {
                    parts[0].clone()
                } else {
                    Ex::Add(parts)
                };
                Ok(Value::Set(vec![
                    Value::Expr(Ex::Add(vec![base.clone(), spread.clone().neg()])),
                    Value::Expr(Ex::Add(vec![base, spread])),
                ]))
            }
        }
    }

    fn starts_atom(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Letter(_) | Tok::Text(_)) => true,
            Some(Tok::Op('(' | '[' | '{')) => true,
            Some(Tok::Cmd(c)) => !matches!(
                c.as_str(),
                "cdot"
                    | "times"
                    | "div"
                    | "pm"
                    | "mp"
                    | "cup"
                    | "in"
                    | "le"
                    | "ge"
                    | "ne"
                    | "approx"
                    | "equiv"
                    | "}"
                    | "\\"
                    | "end"
                    | "rfloor"
                    | "rceil"
                    | "to"
                    | "rangle"
            ),
            _ => false,
        }
    }

    /// Factors joined by `*`, `/`, `\cdot`, `\times`, `\div` or nothing (`2x`).
    fn term(&mut self) -> R<Value> {
        let mut first = self.unary()?;
        // A mixed number `2\frac{1}{2}` is 2 + 1/2, as it is written in answers.
        if let Value::Expr(Ex::Num(Num::Exact(whole))) = &first {
            if whole.is_int()
                && whole.num >= 0
                && matches!(self.peek(), Some(Tok::Cmd(c)) if c == "frac")
            {
                let save = self.at;
                self.at += 1;
                let part = self.command("frac")?;
                match &part {
                    Value::Expr(Ex::Num(Num::Exact(f))) if f.num > 0 && f.num < f.den => {
                        first = Value::Expr(Ex::Num(Num::Exact(
                            Rat::new(whole.num * f.den + f.num, f.den).ok_or(ParseError)?,
                        )));
                    }
                    _ => self.at = save,
                }
            }
        }
        let mut factors: Vec<Ex> = Vec::new();
        let mut single = Some(first);
        loop {
            let op = if self.eat_op('*') || self.eat_cmd("cdot") || self.eat_cmd("times") {
                '*'
            } else if self.eat_op('/') || self.eat_cmd("div") || self.eat_op(':') {
                // `a : b` is the ratio a/b (`7:32`), as Math-Verify reads it.
                '/'
            } else if self.starts_atom() {
                ' '
            } else {
                break;
            };
            let next = self.unary()?;
            // Products with a matrix (`A B`, `2 \cdot A`) are matrices.
            let with_matrix =
                matches!(next, Value::Matrix(_)) || matches!(single, Some(Value::Matrix(_)));
            if with_matrix && op != '/' && factors.is_empty() {
                let left = single.take().ok_or(ParseError)?;
                single = Some(matrix_product(left, next)?);
                continue;
            }
            if let Some(s) = single.take() {
                factors.push(expr(s)?);
            }
            let next = expr(next)?;
            factors.push(if op == '/' { inverse(next) } else { next });
        }
        match single {
            Some(v) => Ok(v),
            None => Ok(Value::Expr(Ex::Mul(factors))),
        }
    }

    fn unary(&mut self) -> R<Value> {
        if self.eat_op('-') {
            return Ok(Value::Expr(expr(self.unary()?)?.neg()));
        }
        if self.eat_op('+') {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> R<Value> {
        let base = self.postfix()?;
        if !self.eat_op('^') {
            return Ok(base);
        }
        let exponent = self.exponent()?;
        Ok(Value::Expr(Ex::Pow(
            Box::new(expr(base)?),
            Box::new(exponent),
        )))
    }

    /// `^{...}` or `^2`, `^x`, `^-1` (right-associative).
    fn exponent(&mut self) -> R<Ex> {
        let e = if self.peek() == Some(&Tok::Op('{')) {
            self.next();
            let v = self.item()?;
            self.expect_op('}')?;
            expr(v)?
        } else if self.eat_op('-') {
            expr(self.single()?)?.neg()
        } else {
            expr(self.single()?)?
        };
        if self.eat_op('^') {
            let rest = self.exponent()?;
            return Ok(Ex::Pow(Box::new(e), Box::new(rest)));
        }
        Ok(e)
    }

    /// One token's worth of atom: a digit of `2^10` is the whole `10`, as LaTeX reads `2^10`
    /// as 2^1 · 0 only in print; models mean 2^10.
    fn single(&mut self) -> R<Value> {
        match self.peek() {
            Some(Tok::Num(_)) | Some(Tok::Letter(_)) => self.atom(),
            _ => self.atom(),
        }
    }

    fn postfix(&mut self) -> R<Value> {
        let mut v = self.atom()?;
        loop {
            if self.eat_op('!') {
                v = Value::Expr(Ex::Func(Func::Factorial, vec![expr(v)?]));
            } else if self.eat_op('%') {
                v = Value::Expr(Ex::Pct(Box::new(expr(v)?)));
            } else if self.eat_op('\'') {
                // A prime: `f'` is a name of its own.
                v = match v {
                    Value::Expr(Ex::Sym(s)) => Value::Expr(Ex::Sym(format!("{s}'"))),
                    _ => return Err(ParseError),
                };
            } else {
                break;
            }
        }
        Ok(v)
    }

    /// A braced group `{...}` as one value.
    fn group(&mut self) -> R<Value> {
        if self.eat_op('{') {
            let v = self.item()?;
            self.expect_op('}')?;
            Ok(v)
        } else {
            self.atom()
        }
    }

    fn atom(&mut self) -> R<Value> {
        let tok = self.next().ok_or(ParseError)?;
        let e = match tok {
            Tok::Num(s) => {
                let n = number(&s)?;
                // `52_8`: a number in base 8, read as written, as Math-Verify does.
                if self.eat_op('_') {
                    self.group()?;
                }
                Ex::Num(n)
            }
            Tok::Letter(c) => {
                let mut name = c.to_string();
                if self.eat_op('_') {
                    let sub = match self.next() {
                        Some(Tok::Num(n)) => n,
                        Some(Tok::Letter(l)) => l.to_string(),
                        Some(Tok::Op('{')) => {
                            let mut s = String::new();
                            while let Some(t) = self.next() {
                                match t {
                                    Tok::Op('}') => break,
                                    Tok::Num(n) => s.push_str(&n),
                                    Tok::Letter(l) => s.push(l),
                                    Tok::Op(o) => s.push(o),
                                    Tok::Cmd(c) | Tok::Text(c) => s.push_str(&c),
                                }
                            }
                            s
                        }
                        _ => return Err(ParseError),
                    };
                    name = format!("{name}_{sub}");
                }
                if name == "e" {
                    Ex::Const(Const::E)
                } else {
                    Ex::Sym(name)
                }
            }
            Tok::Text(t) => Ex::Text(text_symbol(&t)),
            Tok::Op('(') => return self.bracketed('('),
            Tok::Op('[') => return self.bracketed('['),
            Tok::Op('{') => {
                // A group, or a set written with plain braces (`{1, 3}`).
                let mut items = self.list(&|t| matches!(t, Some(Tok::Op('}')) | None))?;
                self.expect_op('}')?;
                return match items.len() {
                    0 => Err(ParseError),
                    1 => Ok(items.pop().expect("one")),
                    _ => Ok(Value::Set(items)),
                };
            }
            Tok::Op('|') => {
                let v = expr(self.sum()?)?;
                self.expect_op('|')?;
                Ex::Func(Func::Abs, vec![v])
            }
            Tok::Cmd(c) => return self.command(&c),
            _ => return Err(ParseError),
        };
        Ok(Value::Expr(e))
    }

    /// `(…)` or `[…]`: a group, an interval, or a tuple.
    fn bracketed(&mut self, open: char) -> R<Value> {
        let items = self.list(&|t| matches!(t, Some(Tok::Op(')' | ']')) | None))?;
        let close = match self.next() {
            Some(Tok::Op(c)) => c,
            _ => return Err(ParseError),
        };
        if items.len() == 1 {
            let mut items = items;
            return Ok(items.pop().expect("one"));
        }
        if items.len() == 2 {
            if let (Value::Expr(lo), Value::Expr(hi)) = (&items[0], &items[1]) {
                if interval_ends(lo, hi) {
                    return Ok(Value::Interval(Box::new(Interval {
                        lo: lo.clone(),
                        hi: hi.clone(),
                        lo_open: open == '(',
                        hi_open: close == ')',
                    })));
                }
            }
        }
        if open == '(' && close == ')' && !items.is_empty() {
            return Ok(Value::Tuple(items));
        }
        Err(ParseError)
    }

    fn command(&mut self, c: &str) -> R<Value> {
        let e = match c {
            "frac" => {
                let a = expr(self.group()?)?;
                let b = expr(self.group()?)?;
                match (a.exact(), b.exact()) {
                    (Some(x), Some(y))
                        if y.num != 0
                            && matches!(a, Ex::Num(Num::Exact(_)))
                            && matches!(b, Ex::Num(Num::Exact(_))) =>
                    {
                        Ex::Num(Num::Exact(
                            Rat::new(x.num * y.den, x.den * y.num).ok_or(ParseError)?,
                        ))
                    }
                    _ => Ex::Mul(vec![a, inverse(b)]),
                }
            }
            "sqrt" => {
                if self.eat_op('[') {
                    let n = expr(self.item()?)?;
                    self.expect_op(']')?;
                    let x = expr(self.group()?)?;
                    Ex::Pow(Box::new(x), Box::new(inverse(n)))
                } else {
                    Ex::Func(Func::Sqrt, vec![expr(self.group()?)?])
                }
            }
            "binom" => {
                let n = expr(self.group()?)?;
                let k = expr(self.group()?)?;
                Ex::Func(Func::Binom, vec![n, k])
            }
            "pi" => Ex::Const(Const::Pi),
            "infty" | "infinity" => Ex::Const(Const::Infinity),
            "emptyset" | "varnothing" => return Ok(Value::Set(Vec::new())),
            "mathbb" => {
                let v = self.group()?;
                return match v {
                    Value::Expr(Ex::Sym(s)) if s == "R" => {
                        Ok(Value::Interval(Box::new(Interval {
                            lo: Ex::Const(Const::Infinity).neg(),
                            hi: Ex::Const(Const::Infinity),
                            lo_open: true,
                            hi_open: true,
                        })))
                    }
                    _ => Err(ParseError),
                };
            }
            "{" => {
                let items = self.list(&|t| matches!(t, Some(Tok::Cmd(c)) if c == "}"))?;
                if !self.eat_cmd("}") {
                    return Err(ParseError);
                }
                return Ok(Value::Set(items));
            }
            "lfloor" | "lceil" => {
                let v = expr(self.sum()?)?;
                let close = if c == "lfloor" { "rfloor" } else { "rceil" };
                if !self.eat_cmd(close) {
                    return Err(ParseError);
                }
                Ex::Func(
                    if c == "lfloor" {
                        Func::Floor
                    } else {
                        Func::Ceil
                    },
                    vec![v],
                )
            }
            "lvert" | "vert" | "|" => {
                let v = expr(self.sum()?)?;
                if !(self.eat_cmd("rvert")
                    || self.eat_cmd("vert")
                    || self.eat_cmd("|")
                    || self.eat_op('|'))
                {
                    return Err(ParseError);
                }
                Ex::Func(Func::Abs, vec![v])
            }
            "begin" => return self.matrix(),
            // A named segment, arc or vector (`\overline{CD}`): a name of its own.
            "overline" | "bar" | "vec" | "hat" | "widehat" | "tilde" | "widetilde"
            | "overrightarrow" | "overleftrightarrow" | "overarc" | "mathcal" => {
                let mut name = format!("{c}:");
                self.expect_op('{')?;
                let mut depth = 1;
                while let Some(t) = self.next() {
                    match t {
                        Tok::Op('{') => depth += 1,
                        Tok::Op('}') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    match t {
                        Tok::Num(n) => name.push_str(&n),
                        Tok::Letter(l) => name.push(l),
                        Tok::Op(o) => name.push(o),
                        Tok::Cmd(c) | Tok::Text(c) => name.push_str(&c),
                    }
                }
                if depth != 0 {
                    return Err(ParseError);
                }
                Ex::Sym(name)
            }
            "alpha" | "beta" | "gamma" | "delta" | "epsilon" | "varepsilon" | "zeta" | "eta"
            | "theta" | "vartheta" | "iota" | "kappa" | "lambda" | "mu" | "nu" | "xi" | "rho"
            | "sigma" | "tau" | "upsilon" | "phi" | "varphi" | "chi" | "psi" | "omega"
            | "Gamma" | "Delta" | "Theta" | "Lambda" | "Xi" | "Sigma" | "Phi" | "Psi" | "Omega" => {
                Ex::Sym(c.to_string())
            }
            "ln" | "log" | "exp" | "sin" | "cos" | "tan" | "sec" | "csc" | "cot" | "arcsin"
            | "arccos" | "arctan" | "sinh" | "cosh" | "tanh" => return self.function(c),
            _ => return Err(ParseError),
        };
        Ok(Value::Expr(e))
    }

    fn function(&mut self, name: &str) -> R<Value> {
        let mut base = None;
        if name == "log" && self.eat_op('_') {
            base = Some(expr(self.group()?)?);
        }
        let mut power = None;
        if self.eat_op('^') {
            power = Some(self.exponent()?);
        }
        // The argument: a parenthesised expression, or the factors that follow (`\sin 2x`).
        let arg = if matches!(self.peek(), Some(Tok::Op('('))) {
            expr(self.atom()?)?
        } else {
            let mut factors = vec![expr(self.power()?)?];
            while matches!(self.peek(), Some(Tok::Num(_) | Tok::Letter(_))) {
                factors.push(expr(self.power()?)?);
            }
            if factors.len() == 1 {
                factors.pop().expect("one")
            } else {
                Ex::Mul(factors)
            }
        };
        let f = match name {
            "ln" => Ex::Func(Func::Ln, vec![arg]),
            "log" => match base {
                Some(b) => Ex::Func(Func::LogBase, vec![arg, b]),
                None => Ex::Func(Func::Ln, vec![arg]),
            },
            "exp" => Ex::Func(Func::Exp, vec![arg]),
            "sin" => Ex::Func(Func::Sin, vec![arg]),
            "cos" => Ex::Func(Func::Cos, vec![arg]),
            "tan" => Ex::Func(Func::Tan, vec![arg]),
            "sec" => Ex::Func(Func::Sec, vec![arg]),
            "csc" => Ex::Func(Func::Csc, vec![arg]),
            "cot" => Ex::Func(Func::Cot, vec![arg]),
            "arcsin" => Ex::Func(Func::Asin, vec![arg]),
            "arccos" => Ex::Func(Func::Acos, vec![arg]),
            "arctan" => Ex::Func(Func::Atan, vec![arg]),
            "sinh" => Ex::Func(Func::Sinh, vec![arg]),
            "cosh" => Ex::Func(Func::Cosh, vec![arg]),
            _ => Ex::Func(Func::Tanh, vec![arg]),
        };
        Ok(Value::Expr(match power {
            Some(p) => Ex::Pow(Box::new(f), Box::new(p)),
            None => f,
        }))
    }

    /// `\begin{pmatrix} a & b \\ c & d \end{pmatrix}` (and bmatrix, matrix, Bmatrix, vmatrix,
    /// smallmatrix, array with its column spec).
    fn matrix(&mut self) -> R<Value> {
        let env = self.env_name()?;
        if !env.ends_with("matrix") && env != "array" {
            return Err(ParseError);
        }
        if env == "array" {
            // The column spec `{cc}`.
            self.group_raw()?;
        }
        let mut rows = vec![vec![]];
        loop {
            if self.eat_cmd("end") {
                self.env_name()?;
                break;
            }
            if self.eat_cmd("\\") {
                rows.push(vec![]);
                continue;
            }
            if self.eat_op('&') {
                continue;
            }
            let cell = expr(self.item()?)?;
            rows.last_mut().expect("a row").push(cell);
        }
        rows.retain(|r| !r.is_empty());
        let width = rows.first().map_or(0, Vec::len);
        if rows.is_empty() || rows.iter().any(|r| r.len() != width) {
            return Err(ParseError);
        }
        Ok(Value::Matrix(rows))
    }

    fn env_name(&mut self) -> R<String> {
        self.expect_op('{')?;
        let mut name = String::new();
        while let Some(t) = self.next() {
            match t {
                Tok::Op('}') => return Ok(name),
                Tok::Letter(c) => name.push(c),
                Tok::Op('*') => {}
                _ => return Err(ParseError),
            }
        }
        Err(ParseError)
    }

    fn group_raw(&mut self) -> R<()> {
        self.expect_op('{')?;
        while let Some(t) = self.next() {
            if t == Tok::Op('}') {
                return Ok(());
            }
        }
        Err(ParseError)
    }
}

/// Whether `op` occurs outside every bracket of `toks`.
fn top_level(toks: &[Tok], op: char) -> bool {
    let mut depth = 0i32;
    for t in toks {
        match t {
            Tok::Op('(' | '[' | '{') => depth += 1,
            Tok::Op(')' | ']' | '}') => depth -= 1,
            Tok::Op(c) if *c == op && depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// Whether a value is a tuple (or interval, as `(p, q)` parses) of plain names: the label of a
/// named tuple.
fn names_only(v: &Value) -> bool {
    let name = |v: &Value| matches!(v, Value::Expr(Ex::Sym(_)));
    match v {
        Value::Tuple(items) => items.iter().all(name),
        _ => false,
    }
}

/// Entry-wise sum of matrices of one shape.
fn matrix_sum(a: &[Vec<Ex>], b: &[Vec<Ex>], negate_b: bool) -> R<Value> {
    if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| x.len() != y.len()) {
        return Err(ParseError);
    }
    Ok(Value::Matrix(
        a.iter()
            .zip(b)
            .map(|(x, y)| {
                x.iter()
                    .zip(y)
                    .map(|(p, q)| {
                        let q = if negate_b { q.clone().neg() } else { q.clone() };
                        Ex::Add(vec![p.clone(), q])
                    })
                    .collect()
            })
            .collect(),
    ))
}

/// The product of two matrices, or of a scalar and a matrix.
fn matrix_product(a: Value, b: Value) -> R<Value> {
    match (a, b) {
        (Value::Matrix(a), Value::Matrix(b)) => {
            let inner = b.len();
            if a.iter().any(|r| r.len() != inner) || inner == 0 {
                return Err(ParseError);
            }
            let cols = b[0].len();
            Ok(Value::Matrix(
                a.iter()
                    .map(|row| {
                        (0..cols)
                            .map(|j| {
                                Ex::Add(
                                    row.iter()
                                        .zip(&b)
                                        .map(|(x, brow)| Ex::Mul(vec![x.clone(), brow[j].clone()]))
                                        .collect(),
                                )
                            })
                            .collect()
                    })
                    .collect(),
            ))
        }
        (Value::Expr(s), Value::Matrix(m)) | (Value::Matrix(m), Value::Expr(s)) => {
            Ok(Value::Matrix(
                m.into_iter()
                    .map(|row| {
                        row.into_iter()
                            .map(|x| Ex::Mul(vec![s.clone(), x]))
                            .collect()
                    })
                    .collect(),
            ))
        }
        _ => Err(ParseError),
    }
}

/// Whether `(lo, hi)` can be an interval: both ends real numbers (or ±∞), `lo < hi`.
fn interval_ends(lo: &Ex, hi: &Ex) -> bool {
    let none = |_: &str| None;
    let value = |e: &Ex| -> Option<f64> {
        match e {
            Ex::Const(Const::Infinity) => Some(f64::INFINITY),
            Ex::Mul(v) if v.len() == 2 && v[1] == Ex::Const(Const::Infinity) => {
                v[0].exact().map(|r| {
                    if r.num < 0 {
                        f64::NEG_INFINITY
                    } else {
                        f64::INFINITY
                    }
                })
            }
            _ => e.eval(&none).filter(|c| c.im == 0.0).map(|c| c.re),
        }
    };
    matches!((value(lo), value(hi)), (Some(a), Some(b)) if a < b)
}

fn number(s: &str) -> R<Num> {
    match s.split_once('.') {
        None => Ok(Num::Exact(Rat::int(s.parse().map_err(|_| ParseError)?))),
        Some(_) => Ok(Num::Float(s.parse().map_err(|_| ParseError)?)),
    }
}

/// A text answer's symbol: trimmed, outer parentheses and a trailing period dropped,
/// lower-cased (Math-Verify compares names of more than one letter without case).
fn text_symbol(t: &str) -> String {
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

/// Parses cleaned answer LaTeX.
pub fn parse(s: &str) -> Result<Value, ParseError> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Err(ParseError);
    }
    // `p=5,q=2;p=7,q=2`: semicolons separate the answers, commas the parts of one.
    let grouped = top_level(&toks, ';') && top_level(&toks, ',');
    let mut p = P { toks, at: 0 };
    let mut items = if grouped {
        let mut groups = Vec::new();
        loop {
            let mut parts = p.list(&|t| t.is_none() || t == Some(&Tok::Op(';')))?;
            groups.push(if parts.len() == 1 {
                parts.pop().expect("one")
            } else {
                Value::Tuple(parts)
            });
            if !p.eat_op(';') {
                break;
            }
        }
        groups
    } else {
        p.list(&|t| t.is_none())?
    };
    if p.at < p.toks.len() {
        return Err(ParseError);
    }
    Ok(match items.len() {
        0 => return Err(ParseError),
        1 => items.pop().expect("one"),
        _ => Value::Set(items),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Value {
        parse(s).unwrap_or_else(|_| panic!("{s:?} does not parse"))
    }

    #[test]
    fn numbers_lists_and_groups() {
        assert_eq!(p("7,425,000"), Value::Expr(num(7_425_000)));
        assert_eq!(p("1 000"), Value::Expr(num(1000)));
        assert!(matches!(p("1,-2"), Value::Set(v) if v.len() == 2));
        assert!(matches!(p("3, 5, 7"), Value::Set(v) if v.len() == 3));
        assert!(matches!(p("(1,2)"), Value::Interval(i) if i.lo_open && i.hi_open));
        assert!(matches!(p("(2,1)"), Value::Tuple(v) if v.len() == 2));
        assert!(matches!(p("[2,5)"), Value::Interval(i) if !i.lo_open && i.hi_open));
        assert!(matches!(p("(-\\infty, 3)\\cup(4,\\infty)"), Value::Union(v) if v.len() == 2));
        assert!(
            matches!(p("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"), Value::Matrix(r) if r.len() == 2 && r[0].len() == 2)
        );
        assert!(matches!(p("1 \\pm \\sqrt{2}"), Value::Set(v) if v.len() == 2));
        assert!(matches!(p("x = 3"), Value::Rel { .. }));
        assert_eq!(p("52_8"), Value::Expr(num(52)));
    }

    #[test]
    fn expressions_evaluate() {
        let none = |_: &str| None;
        for (s, want) in [
            ("3\\sqrt{13}", 3.0 * 13f64.sqrt()),
            ("\\frac{\\sqrt{3}}{2}", 3f64.sqrt() / 2.0),
            ("2^{10}", 1024.0),
            ("2^10", 1024.0),
            ("\\sin(\\pi/6)", 0.5),
            ("\\log_2 8", 3.0),
            ("5!", 120.0),
            ("\\binom{5}{2}", 10.0),
            ("-\\frac{\\pi}{6}", -std::f64::consts::PI / 6.0),
            ("\\sqrt[3]{-8}", -2.0),
            ("2(3+4)", 14.0),
            ("|{-3}|", 3.0),
        ] {
            let Value::Expr(e) = p(s) else { panic!("{s}") };
            let v = e.eval(&none).unwrap_or_else(|| panic!("{s} evaluates"));
            assert!((v.re - want).abs() < 1e-9, "{s}: {v:?} vs {want}");
        }
    }
}
