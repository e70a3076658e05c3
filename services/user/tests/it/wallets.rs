use fastbreak_proto::user::v1::{
    BatchGetUserStatusRequest, ConnectWalletRequest, DisconnectWalletRequest, GetUserStatusRequest, GetWalletRequest,
    RegisterWalletRequest, WalletState,
};
use tonic::Code;

use crate::{as_user, internal, spawn_app, violated_fields};

#[tokio::test]
async fn a_wallet_is_registered_normalised_and_trading_follows_its_connection() {
    let mut app = spawn_app().await;
    let id = app.user("ada@example.com").await;
    let status =
        app.internal.get_user_status(internal(GetUserStatusRequest { user_id: id.to_string() })).await.unwrap();
    assert!(!status.into_inner().trading_enabled, "no wallet, no trading");

    let request = RegisterWalletRequest { flow_address: "0x1D7E57AA55817448".into() };
    let wallet = app.public.register_wallet(as_user(request, id)).await.unwrap().into_inner();
    assert_eq!((wallet.flow_address.as_str(), wallet.state()), ("0x1d7e57aa55817448", WalletState::Connected));

    let wallet = app.public.disconnect_wallet(as_user(DisconnectWalletRequest {}, id)).await.unwrap().into_inner();
    assert_eq!(wallet.state(), WalletState::Disconnected);
    let status =
        app.internal.get_user_status(internal(GetUserStatusRequest { user_id: id.to_string() })).await.unwrap();
    let status = status.into_inner();
    assert!(!status.trading_enabled);
    assert_eq!(status.flow_address, "0x1d7e57aa55817448");

    app.public.connect_wallet(as_user(ConnectWalletRequest {}, id)).await.unwrap();
    let status =
        app.internal.get_user_status(internal(GetUserStatusRequest { user_id: id.to_string() })).await.unwrap();
    assert!(status.into_inner().trading_enabled);
    let got = app.public.get_wallet(as_user(GetWalletRequest {}, id)).await.unwrap().into_inner();
    assert_eq!(got.state(), WalletState::Connected);
}

#[tokio::test]
async fn malformed_or_taken_addresses_are_refused() {
    let mut app = spawn_app().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    for bad in ["1d7e57aa55817448", "0x1d7e57aa5581744", "0xZZ7e57aa55817448", ""] {
        let status = app
            .public
            .register_wallet(as_user(RegisterWalletRequest { flow_address: bad.into() }, ada))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(violated_fields(&status), ["flow_address"]);
    }
    let address = RegisterWalletRequest { flow_address: "0x1d7e57aa55817448".into() };
    app.public.register_wallet(as_user(address.clone(), ada)).await.unwrap();
    let taken = app.public.register_wallet(as_user(address, bob)).await.unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert_eq!(violated_fields(&taken), ["flow_address"]);
    let none = app.public.get_wallet(as_user(GetWalletRequest {}, bob)).await.unwrap_err();
    assert_eq!(none.code(), Code::NotFound);
    let connect = app.public.connect_wallet(as_user(ConnectWalletRequest {}, bob)).await.unwrap_err();
    assert_eq!(connect.code(), Code::NotFound);
}

#[tokio::test]
async fn statuses_come_in_the_order_asked_without_unknown_users() {
    let mut app = spawn_app().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.public
        .register_wallet(as_user(RegisterWalletRequest { flow_address: "0x00000000000000ab".into() }, bob))
        .await
        .unwrap();
    let unknown = uuid::Uuid::new_v4();
    let request = BatchGetUserStatusRequest { user_ids: vec![bob.to_string(), unknown.to_string(), ada.to_string()] };
    let statuses = app.internal.batch_get_user_status(internal(request)).await.unwrap().into_inner().statuses;
    let ids: Vec<&str> = statuses.iter().map(|s| s.user_id.as_str()).collect();
    assert_eq!(ids, [bob.to_string(), ada.to_string()]);
    assert!(statuses[0].trading_enabled && !statuses[1].trading_enabled);

    let bad = BatchGetUserStatusRequest { user_ids: vec!["x".into()] };
    let status = app.internal.batch_get_user_status(internal(bad)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["user_ids[0]"]);
    let empty = app.internal.batch_get_user_status(internal(BatchGetUserStatusRequest::default())).await.unwrap_err();
    assert_eq!(violated_fields(&empty), ["user_ids"]);
    let missing = app
        .internal
        .get_user_status(internal(GetUserStatusRequest { user_id: unknown.to_string() }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}
