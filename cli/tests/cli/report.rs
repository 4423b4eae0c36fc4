//! The report of a run, rendered and driven in Chromium.

use super::*;

/// The HTML report in a real browser: `startctl run` generates a small dataset with the
/// default model and names the report it wrote beside it; headless Chromium opens that file
/// (no server, no network), and the test checks that the plots rendered with bars of real
/// size, that the viewer's filters change what is shown, and that a trajectory opens into
/// its coloured segments. Screenshots are kept as the test's artifacts. (Here rather than in
/// a file of its own: each test file is a binary linking the whole CLI.)
#[test]
fn the_report_of_a_run_renders_its_plots_and_filters_its_viewer_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("run");
    let out = startctl(&[
        "run",
        "--out",
        &data.display().to_string(),
        "--max-new-tokens",
        "64",
        "--slots",
        "8",
        "--backend",
        "process",
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(0), "run scripts/setup first: {s}");
    let report = data.join("report.html");
    assert!(
        s.contains(&format!("report: {} (44 rows", report.display())),
        "run names its report: {s}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    // Self-contained: nothing to fetch when it opens.
    for outside in ["<link", " src=", "@import", "url("] {
        assert!(!html.contains(outside), "the report references {outside:?}");
    }

    // `startctl report -o` writes the same document elsewhere.
    let copy = dir.path().join("copy.html");
    let again = startctl(&[
        "report",
        &data.display().to_string(),
        "-o",
        &copy.display().to_string(),
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let a = std::fs::read_to_string(&copy).unwrap();
    // Only the build time may differ: the aggregates and the sample are the same.
    let strip = |h: &str| {
        let a = h.find(" · built ").expect("a build time");
        let b = a + h[a..].find("</p>").unwrap();
        format!("{}{}", &h[..a], &h[b..])
    };
    assert_eq!(strip(&a), strip(&html));

    let mut b = start_tests::chromium::Browser::start(1280, 1800);
    b.open(&report);
    // Every plot drew: an SVG of real size, with bars of real height where it has data.
    let plots = b.eval(
        "Array.from(document.querySelectorAll('figure.chart')).map(f => {
           const svg = f.querySelector('svg.plot');
           const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
           const all = svg ? Array.from(svg.querySelectorAll('rect.bar')) : [];
           const bars = all.filter(b => b.getBoundingClientRect().height > 0).length;
           return {title: f.querySelector('figcaption').textContent,
                   svg: !!svg, w: r.width, h: r.height, bars, all: all.length,
                   empty: f.querySelector('.empty') ? f.querySelector('.empty').textContent : null};
         })",
    );
    let plots = plots.as_array().unwrap();
    assert_eq!(plots.len(), 6, "{plots:?}");
    // A 135M model at 64 tokens is seldom right: when no row is, accuracy bars are there but
    // zero high, which is what the plot must show.
    let any_correct = rows_of(&data).iter().any(|t| t.correct == Some(true));
    let accuracy = |p: &serde_json::Value| p["title"].as_str().unwrap().starts_with("Accuracy");
    for p in plots {
        // The plot of a kind of row this run cannot have (RFT pass@k) says why instead.
        if p["empty"].is_string() {
            continue;
        }
        assert!(p["w"].as_f64().unwrap() > 300.0, "{p}");
        assert!(p["h"].as_f64().unwrap() > 150.0, "{p}");
        if accuracy(p) && !any_correct {
            assert!(p["all"].as_u64().unwrap() >= 1, "{p}");
            assert_eq!(p["bars"].as_u64(), Some(0), "no row is correct: {p}");
        } else {
            assert!(p["bars"].as_u64().unwrap() >= 1, "{p}");
        }
    }
    let drawn = |title: &str| {
        plots.iter().any(|p| {
            p["title"].as_str().unwrap().starts_with(title) && p["bars"].as_u64() > Some(0)
        })
    };
    assert!(drawn("Accuracy by tool calls") || !any_correct, "{plots:?}");
    assert!(drawn("Completion length"), "{plots:?}");
    assert!(drawn("Problems by share"), "{plots:?}");

    // The viewer: all sampled rows listed (up to a page), then filtered by kind and problem.
    let cards = |b: &mut start_tests::chromium::Browser, attr: &str| -> Vec<String> {
        b.eval(&format!(
            "Array.from(document.querySelectorAll('#list details.row')).map(d => d.getAttribute('{attr}'))"
        ))
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
    };
    let all = cards(&mut b, "data-kind");
    assert_eq!(
        all.len(),
        44,
        "the 44 rows are all in the sample, on one page"
    );
    let shown = b.eval("document.getElementById('shown').textContent");
    assert_eq!(
        shown,
        serde_json::Value::from("44 of 44 sampled trajectories")
    );
    b.eval(
        "(() => { const f = document.getElementById('f-kind'); f.value = 'code';
         f.dispatchEvent(new Event('change')); return true; })()",
    );
    let code = cards(&mut b, "data-kind");
    assert!(!code.is_empty() && code.len() < all.len(), "{code:?}");
    assert!(code.iter().all(|k| k == "code"), "{code:?}");
    assert_eq!(
        code.len(),
        all.iter().filter(|k| *k == "code").count(),
        "the filter keeps exactly the code rows"
    );
    b.eval(
        "(() => { const f = document.getElementById('f-kind'); f.value = '';
         f.dispatchEvent(new Event('change'));
         const p = document.getElementById('f-problem');
         p.value = document.querySelector('#list details.row').getAttribute('data-problem');
         p.dispatchEvent(new Event('input')); return true; })()",
    );
    let one = cards(&mut b, "data-problem");
    let first = b.eval("document.getElementById('f-problem').value");
    let first = first.as_str().unwrap();
    assert!(!one.is_empty() && one.len() < all.len(), "{one:?}");
    assert!(one.iter().all(|p| p.contains(first)), "{first}: {one:?}");

    // The first row is open: its segments coloured by kind, the grader's verdict below.
    let opened = b.eval(
        "(() => { const d = document.querySelector('#list details.row');
         return {open: d.open, segs: Array.from(d.querySelectorAll('pre.seg')).map(p => p.className),
           verdict: !!d.querySelector('.body .badge'),
           bg: getComputedStyle(d.querySelector('pre.seg')).backgroundColor}; })()",
    );
    assert_eq!(opened["open"], serde_json::Value::Bool(true), "{opened}");
    let segs = opened["segs"].as_array().unwrap();
    assert!(!segs.is_empty(), "{opened}");
    assert!(
        segs.iter()
            .all(|c| c.as_str().unwrap().starts_with("seg seg-")),
        "{opened}"
    );
    assert_eq!(opened["verdict"], serde_json::Value::Bool(true), "{opened}");
    assert_ne!(
        opened["bg"],
        serde_json::Value::from("rgba(0, 0, 0, 0)"),
        "{opened}"
    );

    // Back to every row.
    b.eval(
        "(() => { const p = document.getElementById('f-problem'); p.value = '';
         p.dispatchEvent(new Event('input')); window.scrollTo(0, 0); return true; })()",
    );
    assert_eq!(cards(&mut b, "data-kind").len(), 44);
    // A row that ran code shows each run's outcome, exit status and time under its block.
    let tools = b.eval(
        "(() => { const d = document.querySelector('#list details.row:not([data-tools=\"0\"])');
         if (!d) return null;
         d.open = true;
         return new Promise(r => setTimeout(() => r(Array.from(d.querySelectorAll('.tool'))
           .map(t => t.textContent)), 50)); })()",
    );
    let ran = tools_in(&rows_of(&data));
    if ran > 0 {
        let lines = tools
            .as_array()
            .expect("a row with tool calls in the viewer");
        assert!(!lines.is_empty(), "{tools}");
        for l in lines {
            let l = l.as_str().unwrap();
            assert!(
                (l.starts_with("ran (python): ") || l.starts_with("ran (sql): "))
                    && l.contains(" · exit ")
                    && l.contains(" ms"),
                "{l}"
            );
        }
    }

    assert!(
        b.exceptions.is_empty(),
        "the page threw: {:?}",
        b.exceptions
    );
    for (name, scroll) in [
        ("report.png", "window.scrollTo(0, 0)"),
        (
            "report-viewer.png",
            "(document.querySelector('#list details.row[open]:not([data-tools=\"0\"])') \
             || document.getElementById('viewer')).scrollIntoView()",
        ),
    ] {
        b.eval(&format!("{scroll}; true"));
        let png = b.screenshot();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let shot = artifacts().join(name);
        std::fs::write(&shot, &png).unwrap();
        eprintln!("screenshot: {}", shot.display());
    }
}
