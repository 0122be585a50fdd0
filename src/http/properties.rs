//! Properties of every parser a client reaches, over generated input (proptest): the
//! predict and batch bodies, odds, dates, game ids, model references and invalidation
//! patterns. None panics; a refusal is always a 4xx with a stable code; and what parses
//! prints back as it was written.

use proptest::prelude::*;

use super::errors::{self, ApiError};
use crate::cache::KeyPattern;
use crate::games::{GameId, parse_date};
use crate::models::ModelRef;
use crate::predict::{BatchBody, MarketOdds, OddsFormat, PredictBody, PredictRequest};

/// What the predict handler does with a body: serde, then the checks that need no data.
fn parse_predict(body: &str) -> Result<PredictRequest, ApiError> {
    let body: PredictBody = serde_json::from_str(body).map_err(|e| errors::from_serde(&e))?;
    Ok(PredictRequest::try_from(body)?)
}

fn assert_client_error(error: &ApiError) {
    let code = error.code();
    assert!(code.status().is_client_error(), "{code:?} for {error}");
    assert!(!code.code().is_empty());
}

/// JSON values of any shape, a few levels deep, with the keys the bodies use among others.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[ -~]{0,20}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("KCA202404100")),
        Just(serde_json::Value::from("2025-04-05")),
    ];
    let key = prop_oneof![
        Just("game_id".to_owned()),
        Just("game".to_owned()),
        Just("home".to_owned()),
        Just("away".to_owned()),
        Just("date".to_owned()),
        Just("odds".to_owned()),
        Just("format".to_owned()),
        Just("model".to_owned()),
        Just("items".to_owned()),
        "[a-z_]{1,8}",
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_predict_body_parses_or_is_a_client_error(body in json_value()) {
        if let Err(error) = parse_predict(&body.to_string()) {
            assert_client_error(&error);
        }
    }

    #[test]
    fn any_bytes_as_a_body_are_a_client_error(body in ".{0,64}") {
        if let Err(error) = parse_predict(&body) {
            assert_client_error(&error);
        }
    }

    #[test]
    fn every_batch_item_parses_or_is_a_client_error(body in json_value()) {
        let wrapped = serde_json::json!({ "items": [body] }).to_string();
        let batch: BatchBody = serde_json::from_str(&wrapped).expect("a list of values");
        for item in batch.items {
            let parsed = serde_json::from_str::<PredictBody>(item.get())
                .map_err(|e| errors::from_serde(&e))
                .and_then(|body| Ok(PredictRequest::try_from(body)?));
            if let Err(error) = parsed {
                assert_client_error(&error);
            }
        }
    }

    #[test]
    fn odds_are_refused_with_a_code_or_priced_within_bounds(
        home in prop_oneof![any::<f64>(), -200_000.0..200_000.0, 0.5..1_500.0],
        away in prop_oneof![any::<f64>(), -200_000.0..200_000.0, 0.5..1_500.0],
        format in prop_oneof![
            Just(None),
            Just(Some(OddsFormat::American)),
            Just(Some(OddsFormat::Decimal)),
        ],
    ) {
        match MarketOdds::parse(home, away, format) {
            Ok(market) => {
                for side in [market.home.value(), market.away.value()] {
                    prop_assert!(side > 1.0 && side <= 1001.0, "{side}");
                }
                let view = market.evaluate(0.5);
                prop_assert!(view.overround >= -1e-9, "{}", view.overround);
            }
            Err(error) => assert_client_error(&ApiError::from(
                crate::predict::RequestError::from(error),
            )),
        }
    }

    #[test]
    fn dates_parse_only_as_yyyy_mm_dd_and_print_back(text in "[-+0-9]{0,12}") {
        if let Some(date) = parse_date(&text) {
            prop_assert_eq!(date.format("%Y-%m-%d").to_string(), text);
        }
    }

    #[test]
    fn real_dates_round_trip(days in 0_i64..200_000) {
        let date = chrono::NaiveDate::from_ymd_opt(1871, 1, 1).expect("a date")
            + chrono::Days::new(days.unsigned_abs());
        let text = date.format("%Y-%m-%d").to_string();
        prop_assert_eq!(parse_date(&text), Some(date));
    }

    #[test]
    fn game_ids_print_back_as_given(text in "[A-Z0-9]{10,13}|.{0,16}") {
        if let Ok(id) = text.parse::<GameId>() {
            prop_assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn model_refs_print_back_as_given(text in "[a-z_]{1,12}(@[0-9a-z.]{1,6})?|.{0,20}") {
        if let Ok(model) = text.parse::<ModelRef>() {
            prop_assert_eq!(model.to_string(), text);
        }
    }

    #[test]
    fn invalidation_patterns_print_back_or_are_refused(
        text in "(prediction:|features:|\\*|games:)?[ -~]{0,40}"
    ) {
        match text.parse::<KeyPattern>() {
            Ok(pattern) => prop_assert_eq!(pattern.to_string(), text),
            Err(error) => assert_client_error(&ApiError::from(error)),
        }
    }
}
