//! Shared arrange steps for the stores' tests.

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use diesel_async::AsyncPgConnection;
use fastbreak_db::Rarity;
use fastbreak_marketplace::store::Player;
use fastbreak_marketplace::store::{self as market, Listing, ListingState, Moment};
use fastbreak_user::store::{self as users, NewUser, User};
use uuid::Uuid;

/// A new user.
pub async fn user(conn: &mut AsyncPgConnection, name: &str) -> User {
    let email = format!("{name}-{}@example.com", Uuid::new_v4().simple());
    users::create_user(
        conn,
        &NewUser { id: Uuid::new_v4(), display_name: name, email: &email, password_hash: "argon2$hash" },
    )
    .await
    .unwrap()
}

/// A Flow address made from a number.
pub fn address(n: u64) -> String {
    format!("0x{n:016x}")
}

/// A player, created or updated.
pub async fn player(conn: &mut AsyncPgConnection, id: &str) -> Player {
    market::upsert_player(
        conn,
        &Player {
            id: id.to_owned(),
            full_name: format!("Player {id}"),
            team_code: "LAL".to_owned(),
            position: "F".to_owned(),
            seasons_played: 1,
            jersey_number: Some(23),
        },
    )
    .await
    .unwrap()
}

/// A moment of a player, owned by `owner`.
pub async fn moment(conn: &mut AsyncPgConnection, player_id: &str, serial: i32, owner: &str) -> Moment {
    market::insert_moment(
        conn,
        &Moment {
            id: Uuid::new_v4(),
            player_id: player_id.to_owned(),
            set_name: "Base Set (Series 4)".to_owned(),
            play_category: "dunk".to_owned(),
            play_at: Utc.with_ymd_and_hms(2026, 1, 15, 3, 0, 0).unwrap(),
            rarity: Rarity::Common,
            serial_number: serial,
            edition_size: 1000,
            owner_address: owner.to_owned(),
        },
    )
    .await
    .unwrap()
}

/// An active listing of a moment on the simulator.
pub async fn listing(conn: &mut AsyncPgConnection, moment: &Moment, price_cents: i64) -> Listing {
    let now = self::now();
    market::insert_listing(
        conn,
        &Listing {
            id: Uuid::new_v4(),
            moment_id: moment.id,
            source_id: "simulator".to_owned(),
            price_cents,
            seller_address: moment.owner_address.clone(),
            state: ListingState::Active,
            created_at: now,
            updated_at: now,
        },
    )
    .await
    .unwrap()
}

/// Now, at the microsecond precision PostgreSQL keeps.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
