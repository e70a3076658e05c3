//! A short fuzzing run through the gateway: a fixed number of random well-formed and malformed
//! requests to every public RPC, from a fixed seed (`FASTBREAK_FUZZ_SEED` sets another). No
//! answer may be INTERNAL or UNKNOWN, no stream may be reset or hang, no HTTP error may come
//! without a gRPC status (but 431 for a header over the server's limit), and every target stays
//! SERVING. The long run is `cargo bench -p fastbreak-integration-tests --bench fuzz`.

use fastbreak_integration_tests::TestMesh;
use fastbreak_integration_tests::fuzz::{self, Client};

const REQUESTS: u64 = 1_500;

#[tokio::test(flavor = "multi_thread")]
async fn public_rpcs_answer_random_and_malformed_requests_without_internal_errors() {
    let seed = fuzz::seed(20_240_601);
    println!("fuzz seed {seed} (FASTBREAK_FUZZ_SEED={seed} replays it), {REQUESTS} requests");
    let mesh = TestMesh::spawn("all").await;
    let client = Client::connect(mesh.addr("gateway"), 8, 4).await;
    let started = std::time::Instant::now();
    let tally = fuzz::run(&client, seed, REQUESTS, 16).await;
    println!("{tally}in {:.1?}", started.elapsed());
    let not_serving = fuzz::not_serving(mesh.addrs()).await;
    assert!(not_serving.is_empty(), "not SERVING after the run: {not_serving:?}");
    assert_eq!(tally.sent, REQUESTS);
    assert_eq!(tally.internal_or_unknown(), 0, "INTERNAL or UNKNOWN answers (seed {seed}); see the findings above");
    assert!(
        tally.findings.is_empty(),
        "reset streams, hangs or bare HTTP answers (seed {seed}): {:?}",
        tally.transport
    );
}
