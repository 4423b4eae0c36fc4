//! Every input the fuzz campaign found a fault with, kept in `regressions/<target>/` once
//! fixed, run again through its target: none may panic or take more than a second (a release
//! build's bound; a debug build is given ten). The seeds of every target run too, so that a
//! target whose real inputs break is caught before any campaign.

use std::time::{Duration, Instant};

fn bound() -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(1)
    }
}

#[test]
fn every_kept_input_and_every_seed_runs_to_an_end() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut targets = start_fuzz::all();
    let names: Vec<&str> = targets.iter().map(|t| t.name).collect();
    // A directory must name a target: a renamed target would leave its inputs unrun.
    for entry in std::fs::read_dir(&root).expect("fuzz/regressions") {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                names.contains(&name.as_str()),
                "regressions/{name}: no such target"
            );
        }
    }
    let mut kept = 0;
    for target in &mut targets {
        let mut inputs: Vec<(String, Vec<u8>)> = target
            .seeds
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("seed {i}"), s.clone()))
            .collect();
        assert!(!inputs.is_empty(), "{}: no seeds", target.name);
        let dir = root.join(target.name);
        if dir.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for f in files {
                kept += 1;
                inputs.push((f.display().to_string(), std::fs::read(&f).unwrap()));
            }
        }
        for (what, input) in inputs {
            let started = Instant::now();
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.run(&input)));
            assert!(result.is_ok(), "{} panics on {what}", target.name);
            let took = started.elapsed();
            assert!(took < bound(), "{} takes {took:?} on {what}", target.name);
        }
    }
    eprintln!("{kept} kept inputs replayed");
}
