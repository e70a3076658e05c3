//! The dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! by `integration-tests/clients/browser/dashboard.py` through WebDriver) in front of the whole
//! mesh with the simulated market running: a new collector signs up, deposits, creates and
//! activates a strategy from a template, sees the agents' decisions arrive in the live feed,
//! reads one, changes a limit in two steps, engages and releases the emergency stop, backtests
//! the strategy and sees its chart, signs out and signs in again by keyboard. Every page is
//! checked for labels, names, contrast and a phone's width, and photographed into
//! `target/screenshots/dashboard`.

use std::path::{Path, PathBuf};

use fastbreak_integration_tests::{TEST_OPERATOR_TOKEN, TestMesh};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_collector_uses_every_page_in_a_real_browser() {
    let python = root().join("integration-tests/clients/python/.venv/bin/python");
    assert!(
        python.exists(),
        "the Python environment is missing: run `python3 -m venv integration-tests/clients/python/.venv && integration-tests/clients/python/.venv/bin/pip install -r integration-tests/clients/browser/requirements.txt` (.ci/run does)"
    );
    for (variable, program) in [("CHROMIUM", "/usr/bin/chromium"), ("CHROMEDRIVER", "/usr/bin/chromedriver")] {
        let program = std::env::var(variable).unwrap_or_else(|_| program.to_owned());
        assert!(
            Path::new(&program).exists(),
            "{program} is missing: `apt-get install chromium chromium-driver` (.ci/run does), or name it in {variable}"
        );
    }
    // The simulated market at an hour every 200 ms, so listings (and decisions) come quickly.
    let mesh =
        TestMesh::spawn_with("all", &[("FASTBREAK_SIMULATOR_TICK", "200ms"), ("FASTBREAK_WEB_FEED_INTERVAL", "300ms")])
            .await;
    let shots = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), PathBuf::from)
        .join("screenshots/dashboard");
    let _ = std::fs::remove_dir_all(&shots);
    let output = tokio::process::Command::new(&python)
        .arg(root().join("integration-tests/clients/browser/dashboard.py"))
        .arg(format!("http://{}", mesh.addr("web")))
        .arg(&shots)
        .arg(TEST_OPERATOR_TOKEN)
        .kill_on_drop(true)
        .output()
        .await
        .expect("the browser flow starts");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("{stdout}");
    assert!(output.status.success(), "the browser flow failed ({}):\n{stdout}\n{stderr}", output.status);
    for page in [
        "sign-in",
        "sign-up",
        "portfolio",
        "strategy-form",
        "strategies",
        "decisions",
        "decision",
        "strategy-protections",
        "decision-awaiting",
        "budget",
        "budget-review",
        "budget-stopped",
        "market",
        "moment",
        "backtests",
        "backtest",
        "notifications",
        "leaderboards",
        "operators",
    ] {
        let shot = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 5_000, "a screenshot of {page} at {}: {size} bytes", shot.display());
    }
}
