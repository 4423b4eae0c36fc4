//! Cleaned answer LaTeX → [`Value`]: numbers, letters, `\frac`, `\sqrt`, powers, functions,
//! implicit products (`2x`, `3\sqrt{13}`, `(x+1)(x-1)`), percentages, relations, and the shapes
//! answers come in: `a, b` and `\{a, b\}` (sets), `(a, b)` (an open interval when it can be
//! one, else a tuple, as Math-Verify reads it), `[a, b)`, unions, matrices, `\pm`.
//!
//! The grammar is one recursive descent, each precedence level calling the next: the levels
//! are here, LaTeX commands, functions and matrices in [`commands`], the tokens in [`lex`].

use super::expr::{Const, Ex, Func, Interval, Num, Rat, Rel, Value};

mod commands;
mod lex;
#[cfg(test)]
mod tests;

use commands::{matrix_product, matrix_sum};
use lex::{number, text_symbol, tokenize, Tok};

/// Why an answer did not parse; such an answer is compared as text only.
#[derive(Debug)]
pub struct ParseError;

type R<T> = Result<T, ParseError>;

struct P {
    toks: Vec<Tok>,
    at: usize,
    /// Nesting of [`P::item`], [`P::unary`] and [`P::exponent`] on the stack: every
    /// recursion of the grammar passes one of them (a command's braced argument, as in
    /// `\frac{1\frac{1…`, passes only `item`).
    depth: usize,
}

/// Deepest nesting parsed: no answer nests 64 levels deep, and a recursive-descent parser
/// without a bound overflows its thread's stack on `[0-[0-[0-…` and on `\frac{1\frac{1…`
/// (both found by the fuzz campaign; a stack overflow aborts the whole worker, not just the
/// grading).
const MAX_DEPTH: usize = 64;

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
        self.deeper(Self::item_unbounded)
    }

    /// [`P::item`] without the depth count.
    fn item_unbounded(&mut self) -> R<Value> {
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

    /// Runs `f` one level deeper, refusing past [`MAX_DEPTH`].
    fn deeper<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError);
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn unary(&mut self) -> R<Value> {
        self.deeper(|p| {
            if p.eat_op('-') {
                return Ok(Value::Expr(expr(p.unary()?)?.neg()));
            }
            if p.eat_op('+') {
                return p.unary();
            }
            p.power()
        })
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
        self.deeper(|p| {
            let e = if p.peek() == Some(&Tok::Op('{')) {
                p.next();
                let v = p.item()?;
                p.expect_op('}')?;
                expr(v)?
            } else if p.eat_op('-') {
                expr(p.single()?)?.neg()
            } else {
                expr(p.single()?)?
            };
            if p.eat_op('^') {
                let rest = p.exponent()?;
                return Ok(Ex::Pow(Box::new(e), Box::new(rest)));
            }
            Ok(e)
        })
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
/// Parses cleaned answer LaTeX.
pub fn parse(s: &str) -> Result<Value, ParseError> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Err(ParseError);
    }
    // `p=5,q=2;p=7,q=2`: semicolons separate the answers, commas the parts of one.
    let grouped = top_level(&toks, ';') && top_level(&toks, ',');
    let mut p = P {
        toks,
        at: 0,
        depth: 0,
    };
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
