//! The Kubernetes manifests in deploy/k8s: every one valid against Kubernetes' API schemas
//! (strict) and holding what every target needs, checked by deploy/check.py; a manifest with a
//! misspelt field is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the check on `folder`: (success, what it printed).
fn check(folder: &Path) -> (bool, String) {
    let python = root().join("integration-tests/clients/python/.venv/bin/python");
    assert!(
        python.exists(),
        "the Python environment is missing: run `python3 -m venv integration-tests/clients/python/.venv && integration-tests/clients/python/.venv/bin/pip install -r integration-tests/clients/python/requirements.txt -r deploy/requirements.txt` (.ci/run does)"
    );
    let output = Command::new(python).arg(root().join("deploy/check.py")).arg(folder).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn every_manifest_is_valid_and_every_target_is_deployed_with_grpc_probes() {
    let (ok, text) = check(&root().join("deploy/k8s"));
    assert!(ok, "{text}");
    println!("{text}");

    // The check can fail: a misspelt field in a copy of the manifests is named.
    let broken = tempfile_dir();
    for entry in std::fs::read_dir(root().join("deploy/k8s")).unwrap() {
        let path = entry.unwrap().path();
        let text =
            std::fs::read_to_string(&path).unwrap().replace("minAvailable: 1", "minAvailable: 1\n  maxUnavalable: 1");
        std::fs::write(broken.join(path.file_name().unwrap()), text).unwrap();
    }
    let (ok, text) = check(&broken);
    assert!(!ok && text.contains("'maxUnavalable' was unexpected"), "{text}");
    std::fs::remove_dir_all(&broken).unwrap();
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fastbreak-k8s-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
