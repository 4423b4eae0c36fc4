//! LaTeX commands (`\frac`, `\sqrt`, `\text`, environments), named functions and matrices,
//! for the grammar's atoms.

use super::*;

impl P {
    pub(super) fn command(&mut self, c: &str) -> R<Value> {
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

    pub(super) fn function(&mut self, name: &str) -> R<Value> {
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
    pub(super) fn matrix(&mut self) -> R<Value> {
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

    pub(super) fn env_name(&mut self) -> R<String> {
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

    pub(super) fn group_raw(&mut self) -> R<()> {
        self.expect_op('{')?;
        while let Some(t) = self.next() {
            if t == Tok::Op('}') {
                return Ok(());
            }
        }
        Err(ParseError)
    }
}

/// Entry-wise sum of matrices of one shape.
pub(super) fn matrix_sum(a: &[Vec<Ex>], b: &[Vec<Ex>], negate_b: bool) -> R<Value> {
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
pub(super) fn matrix_product(a: Value, b: Value) -> R<Value> {
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
