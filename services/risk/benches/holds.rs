//! Figures for the risk service: `AuthorizePurchase` at 50 concurrent callers, all on one hot
//! user (decided one after another under the user's lock) and spread over 1,000 users. Limits
//! are set high so that every call places a hold. Prints holds per second and p50/p99; asserts
//! nothing.
//!
//! Run with `cargo bench -p fastbreak-risk --bench holds`.

use std::time::Duration;

use fastbreak_db::testing::TestDatabase;
use fastbreak_db::{Database, PoolOptions};
use fastbreak_mesh::Context;
use fastbreak_mesh::testing::{TestServer, as_user, closed_loop, internal};
use fastbreak_proto::risk::v1::risk_internal_service_client::RiskInternalServiceClient;
use fastbreak_proto::risk::v1::risk_service_client::RiskServiceClient;
use fastbreak_proto::risk::v1::{
    AuthorizePurchaseRequest, BudgetLimits, ConfirmBudgetLimitChangeRequest, ProposeBudgetLimitChangeRequest,
    PurchaseOrigin,
};
use uuid::Uuid;

const HIGH: i64 = 1_000_000_000_000;

async fn allow_everything(public: &RiskServiceClient<tonic::transport::Channel>, user: Uuid) {
    let limits = BudgetLimits {
        daily_cents: Some(HIGH),
        weekly_cents: Some(HIGH),
        monthly_cents: Some(HIGH),
        total_cents: Some(HIGH),
        per_moment_cents: Some(HIGH),
        ..Default::default()
    };
    let change = public
        .clone()
        .propose_budget_limit_change(as_user(ProposeBudgetLimitChangeRequest { limits: Some(limits) }, user))
        .await
        .unwrap()
        .into_inner();
    public
        .clone()
        .confirm_budget_limit_change(as_user(ConfirmBudgetLimitChangeRequest { change_id: change.change_id }, user))
        .await
        .unwrap();
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let database = TestDatabase::create().await;
        let pool =
            Database::connect_lazy(database.url(), &PoolOptions { max_size: 16, ..PoolOptions::default() }).unwrap();
        let mut settings = fastbreak_risk::Settings { worker_enabled: false, ..Default::default() };
        settings.suspicion.burst_min = 1_000_000;
        let server = TestServer::start(fastbreak_risk::server(Context::new(pool, settings))).await;
        let channel = server.channel().await;
        let public = RiskServiceClient::new(channel.clone());
        let hot = database.create_user().await;
        allow_everything(&public, hot).await;
        let mut many = Vec::with_capacity(1_000);
        for _ in 0..1_000 {
            let user = database.create_user().await;
            allow_everything(&public, user).await;
            many.push(user);
        }
        let many = std::sync::Arc::new(many);

        let client = RiskInternalServiceClient::new(channel);
        for (label, spread, seconds) in
            [("warm-up", false, 1), ("one hot user, 50 callers", false, 5), ("1,000 users, 50 callers", true, 5)]
        {
            let (client, many) = (client.clone(), many.clone());
            let report = closed_loop(50, Duration::from_secs(seconds), move |caller, n| {
                let mut client = client.clone();
                let user = if spread { many[(caller * 7919 + n * 104_729) % many.len()] } else { hot };
                let request = AuthorizePurchaseRequest {
                    user_id: user.to_string(),
                    amount_cents: 1_000,
                    moment_id: Uuid::new_v4().to_string(),
                    idempotency_key: format!("{label}-{caller}-{n}"),
                    balance_cents: HIGH,
                    balance_time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
                    origin: PurchaseOrigin::Automated as i32,
                };
                async move { client.authorize_purchase(internal(request)).await }
            })
            .await;
            println!("AuthorizePurchase, {label}: {}", report.summary());
        }
        server.stop().await.unwrap();
    });
}
