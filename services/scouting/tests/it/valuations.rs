//! Valuations through the API: stored with an id, factors ranked and explained, a listing
//! valued against its price, and no guess without comparables.

use fastbreak_mesh::status::timestamp;
use fastbreak_mesh::testing::internal;
use fastbreak_proto::scouting::v1::{GetMomentValuationRequest, Recommendation, ValueListingRequest};
use tonic_types::StatusExt;

use crate::{market, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn a_valuation_is_stored_ranked_and_explained() {
    let app = spawn().await;
    // Serial 23 is the player's jersey; the play sold at about $40 for ordinary serials.
    let m =
        market(&app, "p-3", &[100, 120, 140, 23], &[(0, 4_000, 3), (1, 4_200, 5), (2, 3_800, 7), (0, 4_100, 1)], 6_000)
            .await;
    let listed = app
        .internal
        .clone()
        .value_listing(internal(ValueListingRequest { listing_id: m.listing.to_string(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.price_cents, Some(6_000));
    assert!((9_000..=11_500).contains(&listed.fair_value_cents), "about 2.5 x $40: {}", listed.fair_value_cents);
    assert!(listed.discount_bps.unwrap() > 2_500 && listed.recommendation() == Recommendation::StrongBuy, "{listed:?}");
    assert_eq!(listed.factors[0].name, "serial");
    assert!(listed.factors[0].explanation.contains("serial #23 matches his jersey"));
    assert!(
        listed.factors.iter().any(|f| f.explanation.starts_with("last 4 sales of this play average $40")),
        "{:#?}",
        listed.factors
    );
    assert!(listed.factors.windows(2).all(|w| w[0].weight >= w[1].weight), "ranked by weight");
    assert!(listed.confidence > 0.5 && (0.0..=1.0).contains(&listed.risk_score));

    // Stored: the id finds the exact valuation.
    let database = app.database.database();
    let mut conn = database.conn().await.unwrap();
    let id = listed.valuation_id.parse().unwrap();
    let (stored, factors) = fastbreak_scouting::store::find_valuation(&mut conn, id).await.unwrap().unwrap();
    assert_eq!((stored.fair_value_cents, factors.len()), (listed.fair_value_cents, listed.factors.len()));

    let alone = app
        .public
        .clone()
        .get_moment_valuation(GetMomentValuationRequest { moment_id: m.moments[0].to_string(), price_cents: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((alone.price_cents, alone.recommendation()), (None, Recommendation::Hold));
}

#[tokio::test(flavor = "multi_thread")]
async fn few_comparables_lower_confidence_and_none_refuses_to_guess() {
    let app = spawn().await;
    let thin = market(&app, "p-4", &[100, 130], &[(0, 4_000, 25)], 4_000).await;
    let valuation = app
        .public
        .clone()
        .get_moment_valuation(GetMomentValuationRequest {
            moment_id: thin.moments[1].to_string(),
            price_cents: Some(3_000),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(valuation.confidence < 0.5, "{valuation:?}");
    let why = valuation.factors.iter().find(|f| f.name == "confidence").expect("low confidence says why");
    assert!(why.explanation.contains("only 1 comparable sales"), "{why:?}");
    assert_ne!(valuation.recommendation(), Recommendation::StrongBuy, "not sure enough for a strong buy");

    let empty = market(&app, "p-5", &[7], &[], 1_000).await;
    let refused = app
        .public
        .clone()
        .get_moment_valuation(GetMomentValuationRequest { moment_id: empty.moments[0].to_string(), price_cents: None })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(refused.get_details_error_info().unwrap().metadata["comparables"], "0");
    let missing = app
        .public
        .clone()
        .get_moment_valuation(GetMomentValuationRequest {
            moment_id: uuid::Uuid::new_v4().to_string(),
            price_cents: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_is_valued_at_the_instant_asked_from_the_sales_up_to_it() {
    let app = spawn().await;
    let m =
        market(&app, "p-9", &[100, 120, 140, 23], &[(0, 4_000, 3), (1, 4_200, 5), (2, 3_800, 7), (0, 4_100, 1)], 6_000)
            .await;
    let value = |price: Option<i64>, at: Option<prost_types::Timestamp>| {
        let mut internal_client = app.internal.clone();
        let request = ValueListingRequest { listing_id: m.listing.to_string(), price_cents: price, valuation_time: at };
        async move { internal_client.value_listing(internal(request)).await }
    };
    let at = |days: i64| Some(timestamp(chrono::Utc::now() - chrono::Duration::days(days)));

    // Two days ago, the sale of yesterday had not happened: three sales count, the price asked.
    let then = value(Some(5_000), at(2)).await.unwrap().into_inner();
    assert_eq!(then.price_cents, Some(5_000));
    assert!(then.factors.iter().any(|f| f.explanation.starts_with("last 3 sales of this play")), "{:#?}", then.factors);
    let (valued, computed) = (then.valuation_time.unwrap(), then.compute_time.unwrap());
    assert!(computed.seconds - valued.seconds >= 2 * 86_400 - 60, "valued two days before it was computed: {then:?}");
    // A month ago no sale had happened: no guess.
    let none = value(None, at(30)).await.unwrap_err();
    assert_eq!(none.code(), tonic::Code::FailedPrecondition, "{none:?}");
    // An instant to come is now; a time or price that cannot be is named.
    let later = value(None, at(-3)).await.unwrap().into_inner();
    assert!(later.valuation_time.unwrap().seconds <= later.compute_time.unwrap().seconds, "{later:?}");
    let wrong = value(Some(0), Some(prost_types::Timestamp { seconds: i64::MAX, nanos: 0 })).await.unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::InvalidArgument);
    let fields: Vec<String> =
        wrong.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["price_cents", "valuation_time"], "{wrong:?}");
}
