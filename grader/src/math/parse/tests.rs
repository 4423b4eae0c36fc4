//! The grammar on answers as they come.

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

#[test]
fn deep_nesting_is_refused_on_every_path_not_a_stack_overflow() {
    // On a thread of 4 MiB (half the main thread's), which 5,000 unbounded levels overflow.
    std::thread::Builder::new()
        .stack_size(4 * 1024 * 1024)
        .spawn(|| {
            for deep in [
                "\\frac{1".repeat(5_000),
                "[0-".repeat(5_000),
                "\\sqrt{".repeat(5_000),
                "2^{".repeat(5_000),
                "(".repeat(5_000),
            ] {
                assert!(parse(&deep).is_err(), "{}", &deep[..20]);
            }
            // Nesting as deep as answers go still parses.
            assert_eq!(
                p(&format!("{}1{}", "\\frac{1}{".repeat(8), "}".repeat(8))),
                p("1")
            );
        })
        .unwrap()
        .join()
        .unwrap();
}
