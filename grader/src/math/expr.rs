//! What a parsed answer is: numbers kept exact where they can be, expressions, and the shapes
//! answers come in (sets, tuples, intervals, matrices, equations); and evaluating expressions,
//! exactly over the rationals or numerically over the complex numbers.

use std::collections::BTreeSet;

/// An exact rational, reduced, with a positive denominator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rat {
    /// Numerator.
    pub num: i128,
    /// Denominator, positive.
    pub den: i128,
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a as i128
}

impl Rat {
    /// `num / den`, reduced; `None` for a zero denominator.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let sign = if den < 0 { -1 } else { 1 };
        Some(Self {
            num: sign * (num / g),
            den: sign * (den / g),
        })
    }

    /// An integer.
    pub fn int(n: i128) -> Self {
        Self { num: n, den: 1 }
    }

    /// Whether it is an integer.
    pub fn is_int(self) -> bool {
        self.den == 1
    }

    /// Its value as a float.
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    fn add(self, o: Self) -> Option<Self> {
        Self::new(
            self.num
                .checked_mul(o.den)?
                .checked_add(o.num.checked_mul(self.den)?)?,
            self.den.checked_mul(o.den)?,
        )
    }

    fn mul(self, o: Self) -> Option<Self> {
        Self::new(self.num.checked_mul(o.num)?, self.den.checked_mul(o.den)?)
    }

    fn pow(self, e: i128) -> Option<Self> {
        if e.unsigned_abs() > 64 {
            return None;
        }
        let (base, e) = if e < 0 {
            (Self::new(self.den, self.num)?, (-e) as u32)
        } else {
            (self, e as u32)
        };
        Self::new(base.num.checked_pow(e)?, base.den.checked_pow(e)?)
    }
}

/// A number as written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// Integers and fractions of integers: exact.
    Exact(Rat),
    /// A decimal literal (`0.333`, `3.0`): compared as Math-Verify compares floats, rounded.
    Float(f64),
}

impl Num {
    /// The value as a float.
    pub fn to_f64(self) -> f64 {
        match self {
            Self::Exact(r) => r.to_f64(),
            Self::Float(f) => f,
        }
    }
}

/// A named constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Const {
    /// π.
    Pi,
    /// Euler's number (`e`, as Math-Verify reads a lone `e`).
    E,
    /// ∞.
    Infinity,
}

/// A function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// Square root (and `\sqrt[n]{}` as a power).
    Sqrt,
    /// Natural logarithm (`\ln`, and `\log` without a base, as sympy reads it).
    Ln,
    /// Exponential.
    Exp,
    /// sin.
    Sin,
    /// cos.
    Cos,
    /// tan.
    Tan,
    /// sec.
    Sec,
    /// csc.
    Csc,
    /// cot.
    Cot,
    /// arcsin.
    Asin,
    /// arccos.
    Acos,
    /// arctan.
    Atan,
    /// sinh.
    Sinh,
    /// cosh.
    Cosh,
    /// tanh.
    Tanh,
    /// Absolute value.
    Abs,
    /// Factorial of a non-negative integer.
    Factorial,
    /// Floor.
    Floor,
    /// Ceiling.
    Ceil,
    /// Binomial coefficient, two arguments.
    Binom,
    /// Logarithm with a base, two arguments: value, base.
    LogBase,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Ex {
    /// A number.
    Num(Num),
    /// A variable: a letter, or a letter with a subscript (`x_1`).
    Sym(String),
    /// Words in `\text{}`: a text answer ("Evelyn", "(C)"), lower-cased.
    Text(String),
    /// A constant.
    Const(Const),
    /// A sum.
    Add(Vec<Ex>),
    /// A product.
    Mul(Vec<Ex>),
    /// A power.
    Pow(Box<Ex>, Box<Ex>),
    /// A function of its arguments.
    Func(Func, Vec<Ex>),
    /// `x%`: x hundredths, compared leniently as Math-Verify does (`28%` equals 28 and 0.28).
    Pct(Box<Ex>),
}

/// A relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rel {
    /// `=`.
    Eq,
    /// `≠`.
    Ne,
    /// `<`.
    Lt,
    /// `≤`.
    Le,
    /// `>`.
    Gt,
    /// `≥`.
    Ge,
}

impl Rel {
    /// The relation with its sides swapped (`a < b` is `b > a`).
    pub fn flipped(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::Gt => Self::Lt,
            Self::Le => Self::Ge,
            Self::Ge => Self::Le,
            other => other,
        }
    }
}

/// An interval's ends.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// Left end.
    pub lo: Ex,
    /// Right end.
    pub hi: Ex,
    /// `(` rather than `[`.
    pub lo_open: bool,
    /// `)` rather than `]`.
    pub hi_open: bool,
}

/// A parsed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An expression.
    Expr(Ex),
    /// A relation or a chain of them (`a = b = c`): `items[i] ops[i] items[i + 1]`.
    Rel {
        /// The sides.
        items: Vec<Ex>,
        /// The relations between them.
        ops: Vec<Rel>,
    },
    /// An unordered collection: `\{a, b\}`, or several answers `a, b`.
    Set(Vec<Value>),
    /// An ordered tuple `(a, b, c)`.
    Tuple(Vec<Value>),
    /// An interval.
    Interval(Box<Interval>),
    /// A union of intervals and sets.
    Union(Vec<Value>),
    /// A matrix, by rows.
    Matrix(Vec<Vec<Ex>>),
}

/// A complex number, for numeric evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct C {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

impl C {
    /// A real number.
    pub fn real(re: f64) -> Self {
        Self { re, im: 0.0 }
    }

    fn add(self, o: Self) -> Self {
        Self {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }

    fn mul(self, o: Self) -> Self {
        Self {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }

    fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    fn ln(self) -> Self {
        Self {
            re: self.abs().ln(),
            im: self.im.atan2(self.re),
        }
    }

    fn exp(self) -> Self {
        let m = self.re.exp();
        Self {
            re: m * self.im.cos(),
            im: m * self.im.sin(),
        }
    }

    fn pow(self, e: Self) -> Self {
        if self.re == 0.0 && self.im == 0.0 {
            return if e.re > 0.0 {
                self
            } else {
                Self::real(f64::NAN)
            };
        }
        // Real powers of negative reals with odd-denominator exponents stay real (cube roots).
        if self.im == 0.0 && e.im == 0.0 {
            if self.re > 0.0 || e.re.fract() == 0.0 {
                return Self::real(self.re.powf(e.re));
            }
            let inv = 1.0 / e.re;
            if inv.fract() == 0.0 && (inv as i64) % 2 != 0 {
                return Self::real(-(-self.re).powf(e.re));
            }
        }
        e.mul(self.ln()).exp()
    }

    fn inv(self) -> Self {
        let d = self.re * self.re + self.im * self.im;
        Self {
            re: self.re / d,
            im: -self.im / d,
        }
    }

    fn finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }

    /// Whether two values agree to a relative `tol`.
    pub fn close(self, o: Self, tol: f64) -> bool {
        let d = Self {
            re: self.re - o.re,
            im: self.im - o.im,
        }
        .abs();
        d <= tol * self.abs().max(o.abs()).max(1.0)
    }
}

/// Values for variables during numeric evaluation.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<C>;

impl Ex {
    /// A negation.
    pub fn neg(self) -> Ex {
        match self {
            Ex::Num(Num::Exact(r)) => Ex::Num(Num::Exact(Rat {
                num: -r.num,
                den: r.den,
            })),
            Ex::Num(Num::Float(f)) => Ex::Num(Num::Float(-f)),
            other => Ex::Mul(vec![Ex::Num(Num::Exact(Rat::int(-1))), other]),
        }
    }

    /// The variables in it.
    pub fn symbols(&self, out: &mut BTreeSet<String>) {
        match self {
            Ex::Sym(s) => {
                out.insert(s.clone());
            }
            Ex::Add(v) | Ex::Mul(v) | Ex::Func(_, v) => v.iter().for_each(|e| e.symbols(out)),
            Ex::Pow(a, b) => {
                a.symbols(out);
                b.symbols(out);
            }
            Ex::Pct(e) => e.symbols(out),
            _ => {}
        }
    }

    /// Whether any part is a text answer.
    pub fn has_text(&self) -> bool {
        match self {
            Ex::Text(_) => true,
            Ex::Add(v) | Ex::Mul(v) | Ex::Func(_, v) => v.iter().any(Ex::has_text),
            Ex::Pow(a, b) => a.has_text() || b.has_text(),
            Ex::Pct(e) => e.has_text(),
            _ => false,
        }
    }

    /// The exact rational value of a numbers-only expression without irrational parts.
    pub fn exact(&self) -> Option<Rat> {
        match self {
            Ex::Num(Num::Exact(r)) => Some(*r),
            Ex::Add(v) => v.iter().try_fold(Rat::int(0), |acc, e| acc.add(e.exact()?)),
            Ex::Mul(v) => v.iter().try_fold(Rat::int(1), |acc, e| acc.mul(e.exact()?)),
            Ex::Pow(a, b) => {
                let e = b.exact()?;
                if !e.is_int() {
                    return None;
                }
                a.exact()?.pow(e.num)
            }
            Ex::Pct(e) => e.exact()?.mul(Rat::new(1, 100)?),
            Ex::Func(Func::Abs, v) => v[0].exact().map(|r| Rat {
                num: r.num.abs(),
                den: r.den,
            }),
            Ex::Func(Func::Factorial, v) => {
                let n = v[0].exact()?;
                if !n.is_int() || !(0..=30).contains(&n.num) {
                    return None;
                }
                (1..=n.num).try_fold(Rat::int(1), |acc, k| acc.mul(Rat::int(k)))
            }
            Ex::Func(Func::Binom, v) => {
                let (n, k) = (v[0].exact()?, v[1].exact()?);
                if !n.is_int()
                    || !k.is_int()
                    || n.num < 0
                    || k.num < 0
                    || k.num > n.num
                    || n.num > 60
                {
                    return Some(Rat::int(0)).filter(|_| n.is_int() && k.is_int() && k.num > n.num);
                }
                let mut acc = Rat::int(1);
                for i in 0..k.num {
                    acc = acc.mul(Rat::new(n.num - i, i + 1)?)?;
                }
                Some(acc)
            }
            Ex::Func(Func::Floor, v) => {
                let r = v[0].exact()?;
                Some(Rat::int(r.num.div_euclid(r.den)))
            }
            Ex::Func(Func::Ceil, v) => {
                let r = v[0].exact()?;
                Some(Rat::int(-(-r.num).div_euclid(r.den)))
            }
            _ => None,
        }
    }

    /// The numeric value, variables taken from `env`; `None` when a part cannot be evaluated
    /// (an unknown variable, a text answer, infinity).
    pub fn eval(&self, env: Env) -> Option<C> {
        let v = match self {
            Ex::Num(n) => C::real(n.to_f64()),
            Ex::Sym(s) => env(s)?,
            Ex::Text(_) => return None,
            Ex::Const(Const::Pi) => C::real(std::f64::consts::PI),
            Ex::Const(Const::E) => C::real(std::f64::consts::E),
            Ex::Const(Const::Infinity) => return None,
            Ex::Add(v) => v
                .iter()
                .try_fold(C::real(0.0), |acc, e| Some(acc.add(e.eval(env)?)))?,
            Ex::Mul(v) => v
                .iter()
                .try_fold(C::real(1.0), |acc, e| Some(acc.mul(e.eval(env)?)))?,
            Ex::Pow(a, b) => {
                let (a, b) = (a.eval(env)?, b.eval(env)?);
                if b.re == -1.0 && b.im == 0.0 {
                    a.inv()
                } else {
                    a.pow(b)
                }
            }
            Ex::Pct(e) => e.eval(env)?.mul(C::real(0.01)),
            Ex::Func(f, args) => {
                let x = args.first()?.eval(env)?;
                let real = |g: fn(f64) -> f64| (x.im == 0.0).then(|| C::real(g(x.re)));
                match f {
                    Func::Sqrt => x.pow(C::real(0.5)),
                    Func::Ln => x.ln(),
                    Func::Exp => x.exp(),
                    Func::Sin => real(f64::sin)?,
                    Func::Cos => real(f64::cos)?,
                    Func::Tan => real(f64::tan)?,
                    Func::Sec => real(|t| 1.0 / t.cos())?,
                    Func::Csc => real(|t| 1.0 / t.sin())?,
                    Func::Cot => real(|t| 1.0 / t.tan())?,
                    Func::Asin => real(f64::asin)?,
                    Func::Acos => real(f64::acos)?,
                    Func::Atan => real(f64::atan)?,
                    Func::Sinh => real(f64::sinh)?,
                    Func::Cosh => real(f64::cosh)?,
                    Func::Tanh => real(f64::tanh)?,
                    Func::Abs => C::real(x.abs()),
                    Func::Floor => real(f64::floor)?,
                    Func::Ceil => real(f64::ceil)?,
                    Func::Factorial => {
                        let n = real(|t| t)?.re;
                        if n.fract() != 0.0 || !(0.0..=170.0).contains(&n) {
                            return None;
                        }
                        C::real((1..=n as u64).map(|k| k as f64).product())
                    }
                    Func::Binom => {
                        let (n, k) = (x.re, args.get(1)?.eval(env)?.re);
                        if k.fract() != 0.0 || k < 0.0 {
                            return None;
                        }
                        C::real(
                            (0..k as u64)
                                .fold(1.0, |acc, i| acc * (n - i as f64) / (i as f64 + 1.0)),
                        )
                    }
                    Func::LogBase => {
                        let b = args.get(1)?.eval(env)?;
                        x.ln().mul(b.ln().inv())
                    }
                }
            }
        };
        v.finite().then_some(v)
    }

    /// Whether it is a single number (or a percentage of one): what Math-Verify compares
    /// by value rather than as an expression.
    pub fn atom(&self) -> Option<(Num, bool)> {
        match self {
            Ex::Num(n) => Some((*n, false)),
            Ex::Pct(e) => match e.as_ref() {
                Ex::Num(n) => Some((*n, true)),
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_arithmetic_and_complex_evaluation() {
        let half = Ex::Pow(
            Box::new(Ex::Num(Num::Exact(Rat::int(2)))),
            Box::new(Ex::Num(Num::Exact(Rat::int(-1)))),
        );
        assert_eq!(half.exact(), Rat::new(1, 2));
        let none = |_: &str| None;
        let cube_root = Ex::Pow(
            Box::new(Ex::Num(Num::Exact(Rat::int(-8)))),
            Box::new(Ex::Num(Num::Exact(Rat::new(1, 3).unwrap()))),
        );
        assert!(cube_root.eval(&none).unwrap().close(C::real(-2.0), 1e-12));
        let i = Ex::Func(Func::Sqrt, vec![Ex::Num(Num::Exact(Rat::int(-1)))]);
        let v = i.eval(&none).unwrap();
        assert!(v.re.abs() < 1e-12 && (v.im - 1.0).abs() < 1e-12);
        assert_eq!(
            Ex::Func(
                Func::Binom,
                vec![
                    Ex::Num(Num::Exact(Rat::int(5))),
                    Ex::Num(Num::Exact(Rat::int(2)))
                ]
            )
            .exact(),
            Some(Rat::int(10))
        );
    }
}
