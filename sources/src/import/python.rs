//! The Python an importer writes: literals for shown calls, and the check programs that turn a
//! source's own test layout (LeetCode-style calls, APPS `fn_name` tests, a Codeforces checker
//! run on files) into the `check(...)` contract the grader runs in the sandbox.

use serde_json::Value;

/// A JSON value written as a Python literal (`true` → `True`, `null` → `None`).
pub(crate) fn py_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A Python string literal: JSON's escapes are all valid Python escapes.
pub(crate) fn py_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A functional test case as a call of `func` and its expected value, each input line one JSON
/// argument; `None` when a line is not JSON.
pub(crate) fn functional_example(func: &str, input: &str, output: &str) -> Option<Value> {
    let args: Option<Vec<String>> = input
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .map(|v| py_literal(&v))
        })
        .collect();
    let expected = serde_json::from_str::<Value>(output).ok()?;
    Some(
        serde_json::json!({"call": format!("{func}({})", args?.join(", ")), "expected": py_literal(&expected)}),
    )
}

/// A check program for LeetCode-style (functional) tests: each input line is one JSON argument.
pub(crate) fn functional_check(cases: &[(String, String)]) -> String {
    let literal = py_str(&serde_json::to_string(cases).expect("serialises"));
    format!(
        "import json\n\n_CASES = json.loads({literal})\n\n\ndef check(candidate):\n    for i, (inp, out) in enumerate(_CASES):\n        args = [json.loads(line) for line in inp.split(\"\\n\") if line.strip()]\n        got = candidate(*args)\n        want = json.loads(out)\n        assert got == want, f\"case {{i}}: expected {{want!r}}, got {{got!r}}\"\n"
    )
}

/// A check program for APPS/TACO call tests: `inputs[i]` is the argument list, `outputs[i]`
/// the expected value, which APPS often wraps in a one-element list. The comparison follows
/// APPS's own test harness: tuples compare as lists, and a result equal to the wrapped value
/// or to its single element passes.
pub(crate) fn apps_call_check(inputs: &[Value], outputs: &[Value]) -> String {
    let pairs: Vec<Value> = inputs
        .iter()
        .zip(outputs)
        .map(|(i, o)| Value::Array(vec![i.clone(), o.clone()]))
        .collect();
    let literal = py_str(&serde_json::to_string(&pairs).expect("serialises"));
    format!(
        "import json\n\n_CASES = json.loads({literal})\n\n\ndef _plain(v):\n    if isinstance(v, tuple):\n        v = list(v)\n    if isinstance(v, list):\n        return [_plain(x) for x in v]\n    return v\n\n\ndef check(candidate):\n    for i, (args, want) in enumerate(_CASES):\n        if not isinstance(args, list):\n            args = [args]\n        got = _plain(candidate(*args))\n        ok = got == want or [got] == want or (isinstance(want, list) and len(want) == 1 and got == want[0])\n        assert ok, f\"case {{i}}: expected {{want!r}}, got {{got!r}}\"\n"
    )
}

/// A `check(input, expected, output)` that runs a Codeforces-style checker script the way
/// open-r1 runs its `generated_checker`: as `checker.py input.txt correct_output.txt
/// solution_output.txt`, in this process with its own `sys.argv`. The output is accepted when
/// the script exits 0 and, if it prints a number first, that number (its score) is at least 1:
/// a partially correct answer is not a correct trajectory.
pub(crate) fn file_checker(program: &str) -> String {
    let literal = py_str(program);
    format!(
        "import contextlib as _cl, io as _io, os as _os, sys as _sys, tempfile as _tf\n\n_CHECKER = {literal}\n\n\ndef check(input, expected, output):\n    d = _tf.mkdtemp()\n    paths = []\n    for name, text in ((\"input.txt\", input), (\"correct_output.txt\", expected), (\"solution_output.txt\", output)):\n        p = _os.path.join(d, name)\n        with open(p, \"w\") as f:\n            f.write(text)\n        paths.append(p)\n    printed = _io.StringIO()\n    argv = _sys.argv\n    _sys.argv = [\"checker.py\", *paths]\n    code = 0\n    try:\n        with _cl.redirect_stdout(printed):\n            exec(compile(_CHECKER, \"checker.py\", \"exec\"), {{\"__name__\": \"__main__\"}})\n    except SystemExit as e:\n        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)\n    finally:\n        _sys.argv = argv\n    if code != 0:\n        return False\n    words = printed.getvalue().split()\n    try:\n        return not words or float(words[0]) >= 1.0\n    except ValueError:\n        return True\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Runs `program` followed by `tail` with the real Python; its stdout.
    fn python(program: &str, tail: &str) -> String {
        String::from_utf8(crate::testing::python(&format!("{program}\n{tail}"))).unwrap()
    }

    #[test]
    fn literals_are_python() {
        let v = json!({"a": [true, null, 1.5, "x\"y\n"]});
        let got = python("", &format!("print(repr({}))", py_literal(&v)));
        assert_eq!(got.trim(), r#"{'a': [True, None, 1.5, 'x"y\n']}"#);
    }

    #[test]
    fn apps_call_checks_accept_wrapped_and_plain_outputs_as_apps_does() {
        let program = apps_call_check(&[json!([2, 3]), json!([[1, 2]])], &[json!([5]), json!(3)]);
        let run = |f: &str| {
            python(
                &program,
                &format!("{f}\ntry:\n    check(f)\n    print('ok')\nexcept AssertionError as e:\n    print('wrong', e)"),
            )
        };
        assert_eq!(
            run("def f(*a):\n    return sum(a[0]) if len(a) == 1 else a[0] + a[1]").trim(),
            "ok"
        );
        assert!(run("def f(*a):\n    return 0").starts_with("wrong case 0"));
    }

    #[test]
    fn file_checkers_run_with_argv_and_their_score_decides() {
        // A checker in the open-r1 style: files on argv, a score printed.
        let checker = "import sys\ninp, want, got = (open(p).read().split() for p in sys.argv[1:4])\nprint(1 if sorted(got) == sorted(want) else 0)\n";
        let program = file_checker(checker);
        let got = python(
            &program,
            "print(check('3\\n', '1 2 3\\n', '3 2 1\\n'), check('3\\n', '1 2 3\\n', '1 2 4\\n'))",
        );
        assert_eq!(got.trim(), "True False");
        let exits = file_checker("import sys\nsys.exit(1)\n");
        assert_eq!(python(&exits, "print(check('', '', ''))").trim(), "False");
    }
}
