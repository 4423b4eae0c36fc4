//! A daemon without the sandbox image (a Docker-in-Docker sidecar starts empty) gets it from a
//! `docker save` archive; an unreadable or wrong archive is an error that names it. A tiny
//! image stands in for the sandbox image so that the test moves kilobytes, not a gigabyte;
//! loading is the same whatever the image holds.

use start_sandbox::docker::ensure_image;
use start_sandbox::SandboxError;
use std::path::Path;
use std::process::{Command, Stdio};

fn sh(script: &str) {
    let status = Command::new("sh")
        .args(["-ec", script])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
}

fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A one-file image under a tag of this test and run, saved to `dir/image.tar.gz` and removed from
/// the daemon; removed again on drop.
struct TinyImage {
    tag: String,
}

impl TinyImage {
    fn saved_to(dir: &Path, name: &str) -> Self {
        if std::env::var_os("START_SKIP_DOCKER_TESTS").is_some() {
            panic!("START_SKIP_DOCKER_TESTS is set: run these tests with --skip image_archive");
        }
        let tag = format!("start-archive-test-{name}:{}", std::process::id());
        let d = dir.display();
        sh(&format!(
            "mkdir -p {d}/root && echo hello > {d}/root/hello.txt \
             && tar -C {d}/root -c . | docker import - {tag} \
             && docker save {tag} | gzip -1 > {d}/image.tar.gz \
             && docker rmi {tag}"
        ));
        assert!(!image_exists(&tag));
        Self { tag }
    }
}

impl Drop for TinyImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}

#[tokio::test]
async fn a_missing_image_is_loaded_from_its_archive() {
    let dir = tempfile::tempdir().unwrap();
    let image = TinyImage::saved_to(dir.path(), "load");
    let docker = start_sandbox::docker::connect(None).unwrap();
    let archive = dir.path().join("image.tar.gz");
    ensure_image(&docker, &image.tag, Some(&archive))
        .await
        .unwrap();
    assert!(image_exists(&image.tag));
    // Present now: nothing is loaded again, the archive is not even opened.
    ensure_image(&docker, &image.tag, Some(&dir.path().join("gone.tar")))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_image_without_an_archive_says_how_to_get_it() {
    let docker = start_sandbox::docker::connect(None).unwrap();
    let tag = format!("start-archive-test-absent:{}", std::process::id());
    let err = ensure_image(&docker, &tag, None).await.unwrap_err();
    assert!(
        matches!(err, SandboxError::ImageMissing(ref t) if *t == tag),
        "{err}"
    );
    assert!(err.to_string().contains("--sandbox-image-archive"), "{err}");
}

#[tokio::test]
async fn bad_archives_are_refused_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let image = TinyImage::saved_to(dir.path(), "bad");
    let docker = start_sandbox::docker::connect(None).unwrap();
    // Missing, not an archive at all, and a good archive of another image.
    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, b"this is not a tar archive\n".repeat(100)).unwrap();
    let other = format!("start-archive-test-other:{}", std::process::id());
    let cases = [
        (dir.path().join("missing.tar"), "No such file"),
        (garbage.clone(), "refused"),
        (dir.path().join("image.tar.gz"), "holds no image"),
    ];
    for (k, (path, why)) in cases.iter().enumerate() {
        let wanted = if k == 2 { &other } else { &image.tag };
        let err = ensure_image(&docker, wanted, Some(path)).await.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, SandboxError::ImageArchive { .. }),
            "{}: {text}",
            path.display()
        );
        assert!(
            text.contains(&path.display().to_string()) && text.contains(why),
            "{text}"
        );
    }
    // The good archive of the wrong image still put its own image in the daemon.
    assert!(image_exists(&image.tag));
    assert!(!image_exists(&other));
}
