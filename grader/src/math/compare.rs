//! Whether two parsed answers are the same, by Math-Verify's rules where they are sound, and
//! by numeric evaluation where Math-Verify would call sympy: an expression equals another when
//! both agree at several points, which is what `simplify(a - b) == 0` decides, in microseconds.

use super::expr::{Const, Ex, Func, Interval, Num, Rat, Rel, Value, C};
use std::collections::BTreeSet;

/// The outcome of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// The same, and how that was established.
    Equal(&'static str),
    /// Different.
    Different,
    /// Cannot be decided here (a part that does not evaluate, such as an unknown function).
    Unknown,
}

fn all(parts: impl IntoIterator<Item = Cmp>, how: &'static str) -> Cmp {
    let mut unknown = false;
    for p in parts {
        match p {
            Cmp::Different => return Cmp::Different,
            Cmp::Unknown => unknown = true,
            Cmp::Equal(_) => {}
        }
    }
    if unknown {
        Cmp::Unknown
    } else {
        Cmp::Equal(how)
    }
}

/// Points at which expressions with variables are compared: irrational values unrelated to
/// π and e (which answers contain), so that different expressions do not agree by accident;
/// a few rounds of them.
const POINTS: [f64; 7] = [
    0.6180339887,
    1.3247179572,
    2.4142135623,
    -0.8019377358,
    3.3166247903,
    0.3819660112,
    -1.7320508075,
];

/// Relative tolerance of numeric equality of exact expressions (Math-Verify evaluates
/// differences to 15 digits).
const EXACT_TOLERANCE: f64 = 1e-10;

/// Compares `gold` with `pred`.
pub fn values(gold: &Value, pred: &Value) -> Cmp {
    // Assignments and equations, as Math-Verify reads them: the gold `x = 3` against a plain
    // `3` compares 3 with 3; a predicted `x = 3` against a plain gold compares its last side.
    let gold_assign = assignment(gold);
    let gold_eq = equation(gold);
    let pred_eq = equation(pred);
    let (g, p);
    let (mut gold, mut pred) = (gold, pred);
    if pred_eq && !gold_eq {
        p = last_side(pred);
        pred = &p;
    } else if gold_assign && !pred_eq {
        g = last_side(gold);
        gold = &g;
    }
    // A relation about one expression against a predicted interval or union: its set.
    let as_set;
    if matches!(pred, Value::Interval(_) | Value::Union(_)) {
        if let Some(set) = relation_as_set(gold) {
            as_set = set;
            gold = &as_set;
        }
    }
    match (gold, pred) {
        (Value::Rel { .. }, Value::Rel { .. }) => relations(gold, pred),
        (Value::Rel { .. }, _) | (_, Value::Rel { .. }) => Cmp::Different,
        (Value::Matrix(a), Value::Matrix(b)) => {
            if a.len() != b.len() || a[0].len() != b[0].len() {
                return Cmp::Different;
            }
            all(
                a.iter()
                    .flatten()
                    .zip(b.iter().flatten())
                    .map(|(x, y)| exprs(x, y)),
                "matrix",
            )
        }
        (Value::Matrix(_), _) | (_, Value::Matrix(_)) => Cmp::Different,
        (Value::Expr(a), Value::Expr(b)) => exprs(a, b),
        _ => collections(gold, pred),
    }
}

/// Sets, tuples, intervals and unions, and a lone value against one of them.
fn collections(gold: &Value, pred: &Value) -> Cmp {
    use Value::*;
    match (gold, pred) {
        (Interval(a), Interval(b)) => intervals(a, b),
        (Union(a), Union(b)) => unions(a, b),
        (Union(a), other) | (other, Union(a)) if a.len() == 1 => values(&a[0], other),
        (Union(_), _) | (_, Union(_)) => Cmp::Different,
        (Tuple(a), Tuple(b)) => in_order(a, b),
        // A tuple against a set compares the set in the order it was written.
        (Tuple(a), Set(b)) | (Set(a), Tuple(b)) => in_order(a, b),
        (Set(a), Set(b)) => sets(a, b),
        // `(1, 2)` is an open interval, and may be meant as the pair 1, 2.
        (Interval(i), Set(b) | Tuple(b)) | (Set(b) | Tuple(b), Interval(i))
            if i.lo_open && i.hi_open && b.len() == 2 =>
        {
            in_order(&[Expr(i.lo.clone()), Expr(i.hi.clone())], b)
        }
        (Interval(_), _) | (_, Interval(_)) => Cmp::Different,
        // A single value is the set of it.
        (Set(a), other) | (other, Set(a)) => {
            if a.len() == 1 {
                values(&a[0], other)
            } else {
                Cmp::Different
            }
        }
        (Tuple(_), _) | (_, Tuple(_)) => Cmp::Different,
        _ => Cmp::Unknown,
    }
}

fn in_order(a: &[Value], b: &[Value]) -> Cmp {
    if a.len() != b.len() {
        return Cmp::Different;
    }
    all(a.iter().zip(b).map(|(x, y)| values(x, y)), "ordered")
}

/// Sets in any order: sorted by value when every element has one (as Math-Verify sorts
/// them), else matched greedily.
fn sets(a: &[Value], b: &[Value]) -> Cmp {
    let (a, b) = (distinct(a), distinct(b));
    if a.len() != b.len() {
        return Cmp::Different;
    }
    let key = |v: &&Value| -> Option<f64> {
        match v {
            Value::Expr(e) => real(e),
            _ => None,
        }
    };
    let keys_a: Option<Vec<f64>> = a.iter().map(key).collect();
    let keys_b: Option<Vec<f64>> = b.iter().map(key).collect();
    if let (Some(ka), Some(kb)) = (keys_a, keys_b) {
        let mut ia: Vec<usize> = (0..a.len()).collect();
        let mut ib: Vec<usize> = (0..b.len()).collect();
        ia.sort_by(|&x, &y| ka[x].total_cmp(&ka[y]));
        ib.sort_by(|&x, &y| kb[x].total_cmp(&kb[y]));
        return all(ia.iter().zip(&ib).map(|(&x, &y)| values(a[x], b[y])), "set");
    }
    let mut used = vec![false; b.len()];
    let mut unknown = false;
    for x in &a {
        let mut found = false;
        for (j, y) in b.iter().enumerate() {
            if used[j] {
                continue;
            }
            match values(x, y) {
                Cmp::Equal(_) => {
                    used[j] = true;
                    found = true;
                    break;
                }
                Cmp::Unknown => unknown = true,
                Cmp::Different => {}
            }
        }
        if !found {
            return if unknown {
                Cmp::Unknown
            } else {
                Cmp::Different
            };
        }
    }
    Cmp::Equal("set")
}

/// A relation written about one expression (`-2 \le x \le 7`, `0 < f(x) < 1`, `x > 3`, `1 \le
/// |z| \le 2`) as the set of its values, so that it can meet a predicted interval or union as
/// Math-Verify's `as_set` makes it meet one. `None` for any other relation.
fn relation_as_set(v: &Value) -> Option<Value> {
    let Value::Rel { items, ops } = v else {
        return None;
    };
    let constant = |e: &Ex| {
        let mut names = BTreeSet::new();
        e.symbols(&mut names);
        names
            .is_empty()
            .then(|| end_value(e))
            .filter(|x| !x.is_nan())
    };
    let infinity = |negative: bool| {
        let inf = Ex::Const(Const::Infinity);
        if negative {
            inf.neg()
        } else {
            inf
        }
    };
    let closed = |op: Rel| matches!(op, Rel::Le | Rel::Ge);
    // (low end, its openness, the expression, high end, its openness)
    let (lo, lo_open, middle, hi, hi_open) = match (items.as_slice(), ops.as_slice()) {
        ([a, m, b], [o1, o2]) if matches!((o1, o2), (Rel::Lt | Rel::Le, Rel::Lt | Rel::Le)) => {
            constant(a)?;
            constant(b)?;
            (a.clone(), !closed(*o1), m, b.clone(), !closed(*o2))
        }
        ([a, m, b], [o1, o2]) if matches!((o1, o2), (Rel::Gt | Rel::Ge, Rel::Gt | Rel::Ge)) => {
            constant(a)?;
            constant(b)?;
            (b.clone(), !closed(*o2), m, a.clone(), !closed(*o1))
        }
        ([m, c], [op]) if constant(m).is_none() && constant(c).is_some() => match op {
            Rel::Lt | Rel::Le => (infinity(true), true, m, c.clone(), !closed(*op)),
            Rel::Gt | Rel::Ge => (c.clone(), !closed(*op), m, infinity(false), true),
            _ => return None,
        },
        ([c, m], [op]) if constant(m).is_none() && constant(c).is_some() => match op {
            Rel::Lt | Rel::Le => (c.clone(), !closed(*op), m, infinity(false), true),
            Rel::Gt | Rel::Ge => (infinity(true), true, m, c.clone(), !closed(*op)),
            _ => return None,
        },
        _ => return None,
    };
    if constant(middle).is_some() {
        return None;
    }
    let interval = |lo: Ex, lo_open: bool, hi: Ex, hi_open: bool| {
        Value::Interval(Box::new(Interval {
            lo,
            hi,
            lo_open,
            hi_open,
        }))
    };
    // `a ≤ |z| ≤ b` with 0 < a: z lies in [-b, -a] ∪ [a, b].
    if let Ex::Func(Func::Abs, inner) = middle {
        if matches!(inner.as_slice(), [Ex::Sym(_)]) && end_value(&lo) > 0.0 {
            return Some(Value::Union(vec![
                interval(hi.clone().neg(), hi_open, lo.clone().neg(), lo_open),
                interval(lo, lo_open, hi, hi_open),
            ]));
        }
        return None;
    }
    Some(interval(lo, lo_open, hi, hi_open))
}

/// Removes the values equal to an earlier one: a set written with a repeat is the same set.
fn distinct(items: &[Value]) -> Vec<&Value> {
    let mut out: Vec<&Value> = Vec::new();
    for v in items {
        if !out.iter().any(|o| matches!(values(o, v), Cmp::Equal(_))) {
            out.push(v);
        }
    }
    out
}

fn intervals(a: &Interval, b: &Interval) -> Cmp {
    if a.lo_open != b.lo_open || a.hi_open != b.hi_open {
        return Cmp::Different;
    }
    all([exprs(&a.lo, &b.lo), exprs(&a.hi, &b.hi)], "interval")
}

/// Unions of intervals and sets, compared part by part in order of their left ends.
fn unions(a: &[Value], b: &[Value]) -> Cmp {
    if a.len() != b.len() {
        return Cmp::Different;
    }
    let start = |v: &Value| -> f64 {
        match v {
            Value::Interval(i) => end_value(&i.lo),
            Value::Set(s) => s
                .first()
                .and_then(|x| match x {
                    Value::Expr(e) => real(e),
                    _ => None,
                })
                .unwrap_or(f64::NAN),
            _ => f64::NAN,
        }
    };
    let mut a: Vec<&Value> = a.iter().collect();
    let mut b: Vec<&Value> = b.iter().collect();
    a.sort_by(|x, y| start(x).total_cmp(&start(y)));
    b.sort_by(|x, y| start(x).total_cmp(&start(y)));
    all(a.iter().zip(&b).map(|(x, y)| values(x, y)), "union")
}

fn end_value(e: &Ex) -> f64 {
    match e {
        Ex::Const(Const::Infinity) => f64::INFINITY,
        Ex::Mul(v) if v.len() == 2 && v[1] == Ex::Const(Const::Infinity) => f64::NEG_INFINITY,
        _ => real(e).unwrap_or(f64::NAN),
    }
}

fn assignment(v: &Value) -> bool {
    matches!(v, Value::Rel { items, ops } if ops.iter().all(|o| *o == Rel::Eq) && only_symbols(&items[0]))
}

fn equation(v: &Value) -> bool {
    matches!(v, Value::Rel { ops, .. } if ops.iter().all(|o| *o == Rel::Eq))
}

/// Whether an expression is made of names alone (`x`, `AB`, `|AB|`, `V_1 : V_2`, `NO/BO`),
/// the left side of an assignment, as Math-Verify reads one.
fn only_symbols(e: &Ex) -> bool {
    match e {
        Ex::Sym(_) => true,
        Ex::Mul(v) | Ex::Add(v) | Ex::Func(_, v) => !v.is_empty() && v.iter().all(only_symbols),
        Ex::Pow(base, exp) => {
            only_symbols(base) && matches!(exp.exact(), Some(r) if r == Rat::int(-1))
        }
        _ => false,
    }
}

fn last_side(v: &Value) -> Value {
    match v {
        Value::Rel { items, .. } => Value::Expr(items.last().expect("a side").clone()),
        other => other.clone(),
    }
}

/// Relations: the same relation between sides whose differences agree (`x = 3` and `3 = x`,
/// `x > 1` and `1 < x`), or equations with proportional differences (`2x = 4` and `x = 2`,
/// whose solutions agree).
fn relations(gold: &Value, pred: &Value) -> Cmp {
    let (Value::Rel { items: gi, ops: go }, Value::Rel { items: pi, ops: po }) = (gold, pred)
    else {
        return Cmp::Different;
    };
    // A chain `x = a = b` that assigns counts as `x = b`.
    let squash = |items: &[Ex], ops: &[Rel]| -> (Ex, Rel, Ex) {
        if ops.iter().all(|o| *o == Rel::Eq) {
            (
                items[0].clone(),
                Rel::Eq,
                items.last().expect("a side").clone(),
            )
        } else {
            (items[0].clone(), ops[0], items[1].clone())
        }
    };
    if go.len() != po.len() && !(go.iter().chain(po).all(|o| *o == Rel::Eq)) {
        return Cmp::Different;
    }
    if go.len() > 1 && go.iter().any(|o| *o != Rel::Eq) {
        // Chained inequalities, side by side.
        if go != po {
            return Cmp::Different;
        }
        return all(gi.iter().zip(pi).map(|(a, b)| exprs(a, b)), "relation");
    }
    let (gl, gop, gr) = squash(gi, go);
    let (pl, pop, pr) = squash(pi, po);
    let diff = |l: &Ex, r: &Ex| Ex::Add(vec![l.clone(), r.clone().neg()]);
    let (dg, dp) = (diff(&gl, &gr), diff(&pl, &pr));
    if gop == pop {
        if let Cmp::Equal(_) = exprs(&dg, &dp) {
            return Cmp::Equal("relation");
        }
    }
    if gop.flipped() == pop {
        if let Cmp::Equal(_) = exprs(&dg, &dp.clone().neg()) {
            return Cmp::Equal("relation");
        }
    }
    if gop == Rel::Eq && pop == Rel::Eq {
        return proportional(&dg, &dp);
    }
    Cmp::Different
}

/// Whether `a = 0` and `b = 0` are the same equation: `a / b` constant and non-zero.
fn proportional(a: &Ex, b: &Ex) -> Cmp {
    let mut names = BTreeSet::new();
    a.symbols(&mut names);
    b.symbols(&mut names);
    if names.is_empty() {
        return Cmp::Different;
    }
    let names: Vec<String> = names.into_iter().collect();
    let mut ratio: Option<C> = None;
    for round in 0..3 {
        let env = |s: &str| {
            names
                .iter()
                .position(|n| n == s)
                .map(|k| C::real(POINTS[(k + round * 2) % POINTS.len()] + round as f64 * 0.37))
        };
        let (Some(x), Some(y)) = (a.eval(&env), b.eval(&env)) else {
            return Cmp::Unknown;
        };
        if y.re == 0.0 && y.im == 0.0 {
            if x.close(C::real(0.0), EXACT_TOLERANCE) {
                continue;
            }
            return Cmp::Different;
        }
        let d = y.re * y.re + y.im * y.im;
        let q = C {
            re: (x.re * y.re + x.im * y.im) / d,
            im: (x.im * y.re - x.re * y.im) / d,
        };
        match ratio {
            None => ratio = Some(q),
            Some(r) if r.close(q, 1e-8) => {}
            Some(_) => return Cmp::Different,
        }
    }
    match ratio {
        Some(r) if !r.close(C::real(0.0), 1e-12) => Cmp::Equal("equation"),
        _ => Cmp::Different,
    }
}

/// The real value of a variable-free expression.
fn real(e: &Ex) -> Option<f64> {
    let none = |_: &str| None;
    e.eval(&none).filter(|c| c.im.abs() < 1e-12).map(|c| c.re)
}

/// Math-Verify's rounding of floats: to 6 decimal places.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Two expressions.
pub fn exprs(a: &Ex, b: &Ex) -> Cmp {
    if a == b {
        return Cmp::Equal("same");
    }
    // Text answers: by name, and a name against the letters of a product (`\text{Evelyn}`
    // against `Evelyn`, parsed as a product of letters).
    if a.has_text() || b.has_text() {
        return match (name(a), name(b)) {
            (Some(x), Some(y)) if x == y => Cmp::Equal("text"),
            _ => Cmp::Different,
        };
    }
    // Numbers compare by value, as Math-Verify compares them.
    if let Some(c) = atoms(a, b) {
        return c;
    }
    let mut names = BTreeSet::new();
    a.symbols(&mut names);
    b.symbols(&mut names);
    if contains_infinity(a) || contains_infinity(b) {
        return if same_infinity(a, b) {
            Cmp::Equal("infinity")
        } else {
            Cmp::Different
        };
    }
    let names: Vec<String> = names.into_iter().collect();
    let rounds = if names.is_empty() { 1 } else { 3 };
    let mut any = false;
    for round in 0..rounds {
        let env = |s: &str| {
            names.iter().position(|n| n == s).map(|k| {
                C::real(POINTS[(k * 3 + round) % POINTS.len()] * (1.0 + round as f64 * 0.5))
            })
        };
        match (a.eval(&env), b.eval(&env)) {
            (Some(x), Some(y)) => {
                any = true;
                if !x.close(y, EXACT_TOLERANCE) {
                    return Cmp::Different;
                }
            }
            (None, None) => {}
            _ => return Cmp::Different,
        }
    }
    if any {
        Cmp::Equal(if names.is_empty() {
            "numeric"
        } else {
            "symbolic"
        })
    } else {
        Cmp::Unknown
    }
}

/// Numbers, Math-Verify's way: when either side is a single number, a float on either side
/// makes it a comparison rounded to 6 decimals, except that an integer only equals a float of
/// exactly its value (`10` is not `10.0000001`); two integers compare without their percent
/// signs (`28%` is 28); otherwise exact values.
fn atoms(a: &Ex, b: &Ex) -> Option<Cmp> {
    let (aa, ab) = (a.atom(), b.atom());
    if aa.is_none() && ab.is_none() {
        return None;
    }
    let is_float = |x: Option<(Num, bool)>| matches!(x, Some((Num::Float(_), _)));
    let value = |e: &Ex| real(e);
    if is_float(aa) || is_float(ab) {
        let (Some(x), Some(y)) = (value(a), value(b)) else {
            return Some(Cmp::Different);
        };
        let integer =
            |at: Option<(Num, bool)>| matches!(at, Some((Num::Exact(r), false)) if r.is_int());
        if (integer(aa) || integer(ab)) && !(is_float(aa) && is_float(ab)) {
            return Some(if x == y {
                Cmp::Equal("decimal")
            } else {
                Cmp::Different
            });
        }
        return Some(if round6(x) == round6(y) || x == y {
            Cmp::Equal("decimal")
        } else {
            Cmp::Different
        });
    }
    let int_of = |at: Option<(Num, bool)>| match at {
        Some((Num::Exact(r), _)) if r.is_int() => Some(r),
        _ => None,
    };
    if let (Some(x), Some(y)) = (int_of(aa), int_of(ab)) {
        return Some(if x == y {
            Cmp::Equal("integer")
        } else {
            Cmp::Different
        });
    }
    match (a.exact(), b.exact()) {
        (Some(x), Some(y)) => Some(if x == y {
            Cmp::Equal("rational")
        } else {
            Cmp::Different
        }),
        _ => {
            // An exact number against an irrational expression (`3` and `\sqrt{9}`).
            let (Some(x), Some(y)) = (value(a), value(b)) else {
                return Some(Cmp::Different);
            };
            Some(if C::real(x).close(C::real(y), EXACT_TOLERANCE) {
                Cmp::Equal("numeric")
            } else {
                Cmp::Different
            })
        }
    }
}

fn contains_infinity(e: &Ex) -> bool {
    match e {
        Ex::Const(Const::Infinity) => true,
        Ex::Add(v) | Ex::Mul(v) | Ex::Func(_, v) => v.iter().any(contains_infinity),
        Ex::Pow(a, b) => contains_infinity(a) || contains_infinity(b),
        Ex::Pct(e) => contains_infinity(e),
        _ => false,
    }
}

/// `\infty` against `\infty`, `-\infty` against `-\infty`.
fn same_infinity(a: &Ex, b: &Ex) -> bool {
    let sign = |e: &Ex| match e {
        Ex::Const(Const::Infinity) => Some(1),
        Ex::Mul(v) if v.len() == 2 && v[1] == Ex::Const(Const::Infinity) => {
            v[0].exact().map(|r: Rat| r.num.signum())
        }
        _ => None,
    };
    matches!((sign(a), sign(b)), (Some(x), Some(y)) if x == y)
}

/// The name a text answer or a product of letters spells.
fn name(e: &Ex) -> Option<String> {
    match e {
        Ex::Text(t) => Some(t.clone()),
        Ex::Sym(s) => Some(if s.chars().count() > 1 {
            s.to_lowercase()
        } else {
            s.clone()
        }),
        Ex::Const(Const::E) => Some("e".into()),
        Ex::Mul(v) => {
            let parts: Option<Vec<String>> = v.iter().map(name).collect();
            let joined = parts?.concat();
            Some(if joined.chars().count() > 1 {
                joined.to_lowercase()
            } else {
                joined
            })
        }
        _ => None,
    }
}

/// `text` (one side's cleaned answer) read with a decimal comma, when it is two digit runs
/// joined by one comma (`1,22`, `0,111`, `1000,99`) and the `other` side is one non-integer
/// number: then the comma is the decimal point, as in most of Europe; else `None`, and `1,2`
/// stays the list it usually is.
pub fn decimal_comma(text: &str, other: &Value) -> Option<Value> {
    let Value::Expr(o) = other else { return None };
    if o.atom().is_none() || o.exact().is_some_and(|r| r.is_int()) {
        return None;
    }
    let t = text.trim();
    let (whole, frac) = t.split_once(',')?;
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !plain(digits) || !plain(frac) {
        return None;
    }
    format!("{whole}.{frac}")
        .parse::<f64>()
        .ok()
        .map(|f| Value::Expr(Ex::Num(Num::Float(f))))
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn cmp(g: &str, p: &str) -> Cmp {
        values(&parse(g).unwrap(), &parse(p).unwrap())
    }

    #[test]
    fn numbers_as_math_verify_compares_them() {
        assert!(matches!(cmp("\\frac{1}{3}", "0.333333"), Cmp::Equal(_)));
        assert_eq!(cmp("\\frac{1}{3}", "0.333"), Cmp::Different);
        assert_eq!(cmp("10", "10.0000001"), Cmp::Different);
        assert!(matches!(cmp("3", "3.0"), Cmp::Equal(_)));
        assert!(matches!(cmp("28%", "28"), Cmp::Equal(_)));
        assert!(matches!(cmp("28%", "0.28"), Cmp::Equal(_)));
        assert!(matches!(cmp("2\\pi", "6.283185"), Cmp::Equal(_)));
        assert_eq!(cmp("1.5", "1.501"), Cmp::Different);
    }

    #[test]
    fn expressions_sets_intervals_and_equations() {
        assert!(matches!(cmp("3\\sqrt{13}", "\\sqrt{117}"), Cmp::Equal(_)));
        assert!(matches!(cmp("x^2+2x+1", "(x+1)^2"), Cmp::Equal(_)));
        assert_eq!(cmp("x^2+2x+1", "(x-1)^2"), Cmp::Different);
        assert!(matches!(cmp("1,-2", "-2, 1"), Cmp::Equal(_)));
        assert_eq!(cmp("3, 5, 7", "3, 5"), Cmp::Different);
        assert_eq!(cmp("[2,5)", "[2,5]"), Cmp::Different);
        assert_eq!(cmp("(1,2)", "(2,1)"), Cmp::Different);
        assert!(matches!(cmp("x=5", "5"), Cmp::Equal(_)));
        assert!(matches!(cmp("5", "x=5"), Cmp::Equal(_)));
        assert!(matches!(cmp("y=2x+3", "2x+3"), Cmp::Equal(_)));
        assert!(matches!(
            cmp("x^2 + y^2 = 1", "y^2 + x^2 = 1"),
            Cmp::Equal(_)
        ));
        assert!(matches!(cmp("2x = 4", "x = 2"), Cmp::Equal(_)));
        assert!(matches!(
            cmp(
                "(-\\infty,3)\\cup(4,\\infty)",
                "(4,\\infty)\\cup(-\\infty,3)"
            ),
            Cmp::Equal(_)
        ));
        assert!(matches!(cmp("\\text{Evelyn}", "Evelyn"), Cmp::Equal(_)));
        assert_eq!(cmp("\\text{Evelyn}", "\\text{Carla}"), Cmp::Different);
    }
}
