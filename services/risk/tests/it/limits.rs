//! Limits: defaults, two-step changes, tokens that work once, only in time and only for their
//! user, and validation that names every problem.

use std::time::Duration;

use fastbreak_mesh::testing::as_user;
use fastbreak_proto::risk::v1::{
    BudgetLimitChangeState, CancelBudgetLimitChangeRequest, ConfirmBudgetLimitChangeRequest, GetBudgetLimitsRequest,
    GetPendingBudgetLimitChangeRequest, LimitKind, ProposeBudgetLimitChangeRequest,
};

use crate::{fields, only, reason, spawn_app, spawn_app_with, test_settings};

#[tokio::test]
async fn a_change_takes_effect_only_when_its_user_confirms_it_once_in_time() {
    let app = spawn_app().await;
    let (user, other) = (app.user().await, app.user().await);
    let mut public = app.public.clone();

    let defaults = public.get_budget_limits(as_user(GetBudgetLimitsRequest {}, user)).await.unwrap().into_inner();
    assert_eq!(
        (defaults.daily_cents, defaults.per_moment_cents, defaults.reserve_cents),
        (Some(50_000), Some(25_000), None)
    );
    assert_eq!(defaults.time_zone, "UTC");

    let proposed = only(|l| {
        l.daily_cents = Some(10_000);
        l.weekly_cents = Some(20_000);
        l.per_moment_cents = Some(5_000);
        l.reserve_cents = Some(1_000);
        l.time_zone = "America/New_York".to_owned();
    });
    let change = public
        .propose_budget_limit_change(as_user(ProposeBudgetLimitChangeRequest { limits: Some(proposed.clone()) }, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(change.state(), BudgetLimitChangeState::Pending);
    assert_eq!(change.current_time_zone, "UTC");
    let daily = change.differences.iter().find(|d| d.kind() == LimitKind::Daily).unwrap();
    assert_eq!((daily.current_cents, daily.proposed_cents), (Some(50_000), Some(10_000)));
    let monthly = change.differences.iter().find(|d| d.kind() == LimitKind::Monthly).unwrap();
    assert_eq!((monthly.current_cents, monthly.proposed_cents), (Some(500_000), None), "unset removes a limit");

    // Nothing changes before confirmation, and another user's confirmation changes nothing.
    let unchanged = public.get_budget_limits(as_user(GetBudgetLimitsRequest {}, user)).await.unwrap().into_inner();
    assert_eq!(unchanged, defaults);
    let confirm = |id: &str| ConfirmBudgetLimitChangeRequest { change_id: id.to_owned() };
    let stolen = public.confirm_budget_limit_change(as_user(confirm(&change.change_id), other)).await.unwrap_err();
    assert_eq!(stolen.code(), tonic::Code::NotFound, "{stolen:?}");
    assert_eq!(
        public.get_budget_limits(as_user(GetBudgetLimitsRequest {}, user)).await.unwrap().into_inner(),
        defaults
    );

    // A client that lost the id finds it again.
    let pending = public
        .get_pending_budget_limit_change(as_user(GetPendingBudgetLimitChangeRequest {}, user))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.change_id, change.change_id);

    let in_force =
        public.confirm_budget_limit_change(as_user(confirm(&change.change_id), user)).await.unwrap().into_inner();
    assert_eq!(
        (in_force.daily_cents, in_force.monthly_cents, in_force.reserve_cents),
        (Some(10_000), None, Some(1_000))
    );
    assert_eq!(in_force.time_zone, "America/New_York");
    assert!(in_force.effective_time.is_some());

    // A used token changes nothing.
    let again = public.confirm_budget_limit_change(as_user(confirm(&change.change_id), user)).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&again).0, "INVALID_STATE");
    let none = public.get_pending_budget_limit_change(as_user(GetPendingBudgetLimitChangeRequest {}, user)).await;
    assert_eq!(none.unwrap_err().code(), tonic::Code::NotFound);

    // Cancelled: confirming it changes nothing.
    let lower = only(|l| l.daily_cents = Some(1_000));
    let change = public
        .propose_budget_limit_change(as_user(ProposeBudgetLimitChangeRequest { limits: Some(lower) }, user))
        .await
        .unwrap()
        .into_inner();
    let cancelled = public
        .cancel_budget_limit_change(as_user(
            CancelBudgetLimitChangeRequest { change_id: change.change_id.clone() },
            user,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state(), BudgetLimitChangeState::Cancelled);
    assert!(public.confirm_budget_limit_change(as_user(confirm(&change.change_id), user)).await.is_err());
    assert_eq!(
        public.get_budget_limits(as_user(GetBudgetLimitsRequest {}, user)).await.unwrap().into_inner(),
        in_force
    );
}

#[tokio::test]
async fn an_expired_change_changes_nothing() {
    let app =
        spawn_app_with(crate::Settings { change_ttl: Duration::from_millis(200), ..test_settings() }, vec![]).await;
    let user = app.user().await;
    let mut public = app.public.clone();
    let change = public
        .propose_budget_limit_change(as_user(
            ProposeBudgetLimitChangeRequest { limits: Some(only(|l| l.daily_cents = Some(99_000))) },
            user,
        ))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = public
        .confirm_budget_limit_change(as_user(ConfirmBudgetLimitChangeRequest { change_id: change.change_id }, user))
        .await
        .unwrap_err();
    assert_eq!(late.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&late).1.get("state").map(String::as_str), Some("expired"));
    let limits = public.get_budget_limits(as_user(GetBudgetLimitsRequest {}, user)).await.unwrap().into_inner();
    assert_eq!(limits.daily_cents, Some(50_000), "still the defaults");
}

#[tokio::test]
async fn bad_limits_are_named_all_at_once_and_no_change_is_no_proposal() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mut public = app.public.clone();
    let bad = only(|l| {
        l.daily_cents = Some(5_000);
        l.weekly_cents = Some(4_000);
        l.monthly_cents = Some(0);
        l.per_moment_cents = Some(-3);
        l.time_zone = "Mars/Olympus_Mons".to_owned();
    });
    let refused = public
        .propose_budget_limit_change(as_user(ProposeBudgetLimitChangeRequest { limits: Some(bad) }, user))
        .await
        .unwrap_err();
    let named = fields(&refused);
    for field in ["limits.weekly_cents", "limits.monthly_cents", "limits.per_moment_cents", "limits.time_zone"] {
        assert!(named.iter().any(|f| f == field), "{field} not in {named:?}");
    }
    let missing =
        public.propose_budget_limit_change(as_user(ProposeBudgetLimitChangeRequest { limits: None }, user)).await;
    assert_eq!(fields(&missing.unwrap_err()), vec!["limits"]);

    let defaults = public.get_budget_limits(as_user(GetBudgetLimitsRequest {}, user)).await.unwrap().into_inner();
    let same = public
        .propose_budget_limit_change(as_user(ProposeBudgetLimitChangeRequest { limits: Some(defaults) }, user))
        .await
        .unwrap_err();
    assert_eq!(fields(&same), vec!["limits"]);
    let none = public.get_pending_budget_limit_change(as_user(GetPendingBudgetLimitChangeRequest {}, user)).await;
    assert_eq!(none.unwrap_err().code(), tonic::Code::NotFound, "refused proposals leave nothing pending");
}
