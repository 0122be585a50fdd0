//! Each worker's rendered answers to `POST /api/v1/predict`: the bytes of an answer served
//! from memory, kept under the request body that asked for it, and served again to the same
//! body without parsing it, looking anything up or serialising, while the prediction service
//! says what they were made from stands ([`PredictService::stands`]) and until their cache
//! entry would expire. A worker keeps its own, so serving one takes no lock and no shared
//! reference. Requests that pin a version by header, and bodies over [`MAX_BODY`] bytes, are
//! not kept.
//!
//! The same answers, without a market, are kept under their [`Question`] too: a body that
//! differs only in its odds (a client pricing a game as its line moves: every body new) is
//! parsed and its market rendered onto the kept bytes, with no lookup and no other
//! serialising. Bodies with odds are kept only there, since they rarely come twice.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use actix_web::HttpResponse;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::web::Bytes;

use crate::games::GameRef;
use crate::models::ModelRef;
use crate::predict::{Caller, MarketOdds, MarketView, PredictService, Prediction, Stamp};

/// The largest request body whose answer is kept: a game id and odds fit many times over.
pub(super) const MAX_BODY: usize = 256;

/// Answers kept per worker at most; a full table starts again empty. Two seasons of games
/// fit. Never more than the prediction cache keeps (`cache.predictions_max_entries`): these
/// are copies of its entries, and a replica's memory of answers is what that setting says.
const CAPACITY: usize = 8192;

/// What a request asks, odds aside.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Question {
    pub game: GameRef,
    pub model: Option<ModelRef>,
}

/// An answer as served, with what it records.
#[derive(Debug, Clone)]
pub(super) struct Rendered {
    pub body: Bytes,
    /// `name@version`, for the `Bullpen-Model` header.
    pub model: HeaderValue,
    pub prediction: Prediction,
    pub until: Instant,
}

#[derive(Debug, Default)]
struct Table {
    /// What every kept answer was made from.
    stamp: Option<Stamp>,
    answers: HashMap<Box<[u8]>, Rendered, foldhash::fast::RandomState>,
    /// The same answers without a market, by what they answer.
    questions: HashMap<Question, Rendered, foldhash::fast::RandomState>,
}

impl Table {
    /// `rendered`, when what it was made from stands and it has not expired.
    fn standing<'a>(
        &self,
        service: &PredictService,
        rendered: Option<&'a Rendered>,
        now: Instant,
    ) -> Option<&'a Rendered> {
        let rendered = rendered?;
        let stands = rendered.until > now
            && self
                .stamp
                .as_ref()
                .is_some_and(|stamp| service.stands(stamp));
        stands.then_some(rendered)
    }
}

impl Rendered {
    /// This answer (or, with `priced`, its bytes and market for the request's odds), recorded
    /// as served again to `caller`.
    fn replay(
        &self,
        service: &PredictService,
        priced: Option<(Bytes, MarketView)>,
        caller: impl FnOnce() -> Caller,
        started: Instant,
        header: &'static str,
    ) -> HttpResponse {
        let body = match priced {
            None => {
                service.served_again(&self.prediction, &caller(), started);
                self.body.clone()
            }
            Some((body, market)) => {
                let prediction = Prediction {
                    market: Some(market),
                    ..self.prediction.clone()
                };
                service.served_again(&prediction, &caller(), started);
                body
            }
        };
        response(header, self.model.clone(), body)
    }
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::default();
}

/// The kept answer to `body`, recorded as served to `caller`, when there is one that stands.
pub(super) fn serve(
    service: &PredictService,
    body: &[u8],
    caller: impl FnOnce() -> Caller,
    header: &'static str,
) -> Option<HttpResponse> {
    TABLE.with_borrow(|table| {
        let started = Instant::now();
        let rendered = table.standing(service, table.answers.get(body), started)?;
        Some(rendered.replay(service, None, caller, started, header))
    })
}

/// The kept answer to `question`, with the market of `odds` when given, recorded as served to
/// `caller`, when there is one that stands, passed through `finish` with the prediction and
/// until when it may be kept. Byte for byte the answer the service would make: the market is
/// the answer's last member.
pub(super) fn serve_question(
    service: &PredictService,
    question: &Question,
    odds: Option<MarketOdds>,
    caller: impl FnOnce() -> Caller,
    header: &'static str,
    finish: impl FnOnce(HttpResponse, &Prediction, Instant) -> HttpResponse,
) -> Option<HttpResponse> {
    TABLE.with_borrow(|table| {
        let started = Instant::now();
        let rendered = table.standing(service, table.questions.get(question), started)?;
        let finish = |response| finish(response, &rendered.prediction, rendered.until);
        let Some(odds) = odds else {
            let response = rendered.replay(service, None, caller, started, header);
            return Some(finish(response));
        };
        let market = odds.evaluate(f64::from(rendered.prediction.home_win_probability));
        let plain = rendered.body.strip_suffix(b"}")?;
        let mut body = Vec::with_capacity(plain.len() + 512);
        body.extend_from_slice(plain);
        body.extend_from_slice(b",\"market\":");
        serde_json::to_writer(&mut body, &market).ok()?;
        body.push(b'}');
        let priced = (Bytes::from(body), market);
        let response = rendered.replay(service, Some(priced), caller, started, header);
        Some(finish(response))
    })
}

/// The answer of rendered JSON `body`, with `model` under `header`.
pub(super) fn response(header: &'static str, model: HeaderValue, body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((header, model))
        .body(body)
}

/// Keeps `rendered`, an answer without a market, as the answer to `question`, and to `body`
/// when given (a body without odds), made under `stamp`. Answers made under an older stamp
/// are dropped; an answer whose stamp no longer stands is not kept.
pub(super) fn keep(
    service: &PredictService,
    stamp: Stamp,
    question: Question,
    body: Option<&[u8]>,
    rendered: Rendered,
) {
    if !service.stands(&stamp) {
        return;
    }
    TABLE.with_borrow_mut(|table| {
        let current = table
            .stamp
            .as_ref()
            .is_some_and(|kept| service.stands(kept));
        let capacity = usize::try_from(service.caches().predictions.capacity())
            .map_or(CAPACITY, |kept| kept.min(CAPACITY));
        if !current || table.answers.len() >= capacity || table.questions.len() >= capacity {
            table.answers.clear();
            table.questions.clear();
        }
        table.stamp = Some(stamp);
        if let Some(body) = body {
            table.answers.insert(body.into(), rendered.clone());
        }
        table.questions.insert(question, rendered);
    });
}
