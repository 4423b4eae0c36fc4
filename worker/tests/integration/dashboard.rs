//! The Grafana dashboard (`k8s/overlays/grafana/start-dashboard.json`) against the series the
//! real binaries export: a coordinator and a worker run a small job, both `/metrics`
//! endpoints are scraped, and every metric a panel's query names (and every label value it
//! selects) must be in what they served. A renamed series fails here, not on a blank panel.

use crate::common::{coordinator_bin, math_problems, model, spec, workspace, Client, Proc};
use start_schemas::proto;
use start_tests::redis::free_port;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn spawn(name: &str, mut cmd: Command, dir: &std::path::Path) -> Proc {
    let log = dir.join(format!("{name}.log"));
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .env("RUST_LOG", "info");
    Proc {
        name: name.into(),
        child: cmd.spawn().unwrap(),
        log,
    }
}

/// Series served at `addr`: metric name -> the `label="value"` pairs seen on it.
async fn scrape(addr: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..end].to_string()).or_default();
        if let (Some(a), Some(b)) = (line.find('{'), line.find('}')) {
            for pair in line[a + 1..b].split(',') {
                labels.insert(pair.to_string());
            }
        }
    }
    out
}

/// Metric names (`start_*`) a PromQL expression reads, each with the `label="value"`
/// matchers of its selector.
fn metrics_in(expr: &str) -> Vec<(String, Vec<String>)> {
    let bytes = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if ident(bytes[i]) && (i == 0 || !ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            let name = &expr[start..i];
            if !name.starts_with("start_") {
                continue;
            }
            let mut matchers = Vec::new();
            if bytes.get(i) == Some(&b'{') {
                let close = expr[i..]
                    .find('}')
                    .map(|e| i + e)
                    .expect("a closed selector");
                for m in expr[i + 1..close].split(',').filter(|m| m.contains("=\"")) {
                    matchers.push(m.trim().to_string());
                }
                i = close;
            }
            out.push((name.to_string(), matchers));
        } else {
            i += 1;
        }
    }
    out
}

/// What the dashboard reads that `served` lacks, one line each; with the queries checked.
fn missing(
    dashboard: &serde_json::Value,
    served: &BTreeMap<String, BTreeSet<String>>,
) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or("?");
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if targets.is_empty() {
            problems.push(format!("panel {title:?} has no query"));
        }
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_default();
            queries += 1;
            let names = metrics_in(expr);
            if names.is_empty() {
                problems.push(format!("panel {title:?}: {expr:?} reads no start_ series"));
            }
            for (name, matchers) in names {
                match served.get(&name) {
                    None => problems.push(format!(
                        "panel {title:?}: {name} is not exported by the coordinator or worker"
                    )),
                    Some(labels) => {
                        for m in matchers.iter().filter(|m| !labels.contains(*m)) {
                            problems.push(format!("panel {title:?}: {name} has no series {{{m}}}"));
                        }
                    }
                }
            }
        }
    }
    (problems, queries)
}

#[test]
fn the_checker_finds_a_misnamed_series_and_a_label_value_never_served() {
    let served = BTreeMap::from([(
        "start_x_total".to_string(),
        BTreeSet::from(["outcome=\"ok\"".to_string()]),
    )]);
    let dashboard = serde_json::json!({"panels": [
        {"title": "a", "targets": [{"expr": "sum(rate(start_x_total{outcome=\"ok\"}[5m])) / sum(rate(start_y_total[5m]))"}]},
        {"title": "b", "targets": [{"expr": "rate(start_x_total{outcome=\"timeout\"}[1m])"}]},
        {"title": "c", "targets": []},
    ]});
    let (problems, queries) = missing(&dashboard, &served);
    assert_eq!(queries, 2);
    assert_eq!(
        problems,
        [
            "panel \"a\": start_y_total is not exported by the coordinator or worker",
            "panel \"b\": start_x_total has no series {outcome=\"timeout\"}",
            "panel \"c\" has no query",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_reads_series_the_binaries_export() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (cm, wm) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut cmd = Command::new(coordinator_bin());
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", &cm, "--redis", "memory"])
        .arg("--store-root")
        .arg(dir.path());
    let coordinator = spawn("coordinator", cmd, dir.path());
    let url = format!("http://127.0.0.1:{port}");
    let client = Client::new(&url, None);
    let job_id = client
        .submit(
            spec("dashboard", proto::GenerationMode::HintInfer, 48, 2),
            math_problems(2),
        )
        .await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_start-worker"));
    cmd.args(["--coordinator", &url, "--slots", "2", "--ctx", "1024"])
        .args(["--threads", "1"])
        .args(["--sandbox", "process", "--sandbox-pool", "1"])
        .args(["--metrics-listen", &wm])
        .arg("--model")
        .arg(model())
        .arg("--store-root")
        .arg(dir.path())
        .env("HOSTNAME", "dashboard");
    let worker = spawn("worker", cmd, dir.path());
    client
        .wait_succeeded(&job_id, Duration::from_secs(300), &[&coordinator, &worker])
        .await;

    let mut served = scrape(&cm).await;
    let from_worker = scrape(&wm).await;
    assert!(
        served.contains_key("start_trajectories_committed_total")
            && from_worker.contains_key("start_worker_trajectories_total"),
        "both endpoints serve start's series: {served:?} {from_worker:?}"
    );
    for (name, labels) in from_worker {
        served.entry(name).or_default().extend(labels);
    }
    let path = workspace().join("k8s/overlays/grafana/start-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (problems, queries) = missing(&dashboard, &served);
    assert!(queries >= 20, "{queries} queries in {}", path.display());
    assert!(
        problems.is_empty(),
        "{}:\n{}\nserved: {:?}",
        path.display(),
        problems.join("\n"),
        served.keys().collect::<Vec<_>>()
    );
}
