//! Figures for the user service: `AuthenticateAccessToken` (which the gateway calls on every
//! request) at 32 concurrent callers, and how long a refused sign-in takes for a wrong password
//! and for an unknown email (they should be alike). Prints them; asserts nothing.
//!
//! Run with `cargo bench -p fastbreak-user --bench authenticate`.

use std::time::{Duration, Instant};

use fastbreak_db::testing::TestDatabase;
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::{TestServer, closed_loop, internal};
use fastbreak_proto::user::v1::user_internal_service_client::UserInternalServiceClient;
use fastbreak_proto::user::v1::user_service_client::UserServiceClient;
use fastbreak_proto::user::v1::{AuthenticateAccessTokenRequest, CreateAccessTokenRequest, CreateUserRequest};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let database = TestDatabase::create().await;
        // The production password cost: sign-in timings are part of what is measured.
        let server = TestServer::start(fastbreak_user::server(Context::new(
            database.database(),
            fastbreak_user::Settings::default(),
        )))
        .await;
        let channel = server.channel().await;
        let mut users = UserServiceClient::new(channel.clone());
        let request = CreateUserRequest {
            display_name: "Bench".into(),
            email: "bench@example.com".into(),
            password: "correct horse battery".into(),
        };
        users.create_user(internal(request)).await.unwrap();
        let sign_in = |email: &str, password: &str| CreateAccessTokenRequest {
            email: email.into(),
            password: password.into(),
            label: "bench".into(),
            ttl: None,
        };
        let secret = users
            .create_access_token(internal(sign_in("bench@example.com", "correct horse battery")))
            .await
            .unwrap()
            .into_inner()
            .secret;

        let client = UserInternalServiceClient::new(channel.clone());
        for (label, seconds) in [("warm-up", 1), ("AuthenticateAccessToken, 32 callers", 5)] {
            let (client, secret) = (client.clone(), secret.clone());
            let report =
                closed_loop(32, Duration::from_secs(seconds), move |_, _| {
                    let (mut client, secret) = (client.clone(), secret.clone());
                    async move {
                        client.authenticate_access_token(internal(AuthenticateAccessTokenRequest { secret })).await
                    }
                })
                .await;
            println!("{label}: {}", report.summary());
        }

        // Refused sign-ins, one at a time, alternating so that both see the same machine.
        let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
        for n in 0..8 {
            // A fresh email each time: the lock after repeated failures is not what is measured.
            let started = Instant::now();
            let _ =
                users.create_access_token(internal(sign_in("bench@example.com", &format!("wrong password {n}")))).await;
            wrong.push(started.elapsed());
            let started = Instant::now();
            let _ =
                users.create_access_token(internal(sign_in(&format!("nobody{n}@example.com"), "wrong password"))).await;
            unknown.push(started.elapsed());
            if n == 3 {
                // Four failures in: recreate nothing, just let the window count stay under the lock.
                database
                    .database()
                    .read(|conn| {
                        Box::pin(async move {
                            fastbreak_user::store::clear_sign_in_failures(conn, "bench@example.com").await
                        })
                    })
                    .await
                    .unwrap();
            }
        }
        let mean =
            |samples: &[Duration]| samples.iter().sum::<Duration>().as_secs_f64() * 1000.0 / samples.len() as f64;
        println!("refused sign-in, wrong password: mean {:.1} ms over {}", mean(&wrong), wrong.len());
        println!("refused sign-in, unknown email:  mean {:.1} ms over {}", mean(&unknown), unknown.len());
        server.stop().await.unwrap();
    });
}
