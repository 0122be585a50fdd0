//! Each worker's rendered answers to `POST /api/v1/predict`: the bytes of an answer served
//! from memory, kept under the request body that asked for it, and served again to the same
//! body without parsing it, looking anything up or serialising, while the prediction service
//! says what they were made from stands ([`PredictService::stands`]) and until their cache
//! entry would expire. A worker keeps its own, so serving one takes no lock and no shared
//! reference. Requests that pin a version by header, and bodies over [`MAX_BODY`] bytes, are
//! not kept.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use actix_web::HttpResponse;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::web::Bytes;

use crate::predict::{Caller, PredictService, Prediction, Stamp};

/// The largest request body whose answer is kept: a game id and odds fit many times over.
pub(super) const MAX_BODY: usize = 256;

/// Answers kept per worker; a full table starts again empty. Two seasons of games fit.
const CAPACITY: usize = 8192;

/// An answer as served, with what it records.
#[derive(Debug)]
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
        let rendered = table.answers.get(body)?;
        let started = Instant::now();
        let stands = rendered.until > started
            && table
                .stamp
                .as_ref()
                .is_some_and(|stamp| service.stands(stamp));
        if !stands {
            return None;
        }
        service.served_again(&rendered.prediction, &caller(), started);
        Some(response(
            header,
            rendered.model.clone(),
            rendered.body.clone(),
        ))
    })
}

/// The answer of rendered JSON `body`, with `model` under `header`.
pub(super) fn response(header: &'static str, model: HeaderValue, body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((header, model))
        .body(body)
}

/// Keeps `rendered` as the answer to `body`, made under `stamp`. Answers made under an older
/// stamp are dropped; an answer whose stamp no longer stands is not kept.
pub(super) fn keep(service: &PredictService, stamp: Stamp, body: &[u8], rendered: Rendered) {
    if !service.stands(&stamp) {
        return;
    }
    TABLE.with_borrow_mut(|table| {
        let current = table
            .stamp
            .as_ref()
            .is_some_and(|kept| service.stands(kept));
        if !current || table.answers.len() >= CAPACITY {
            table.answers.clear();
        }
        table.stamp = Some(stamp);
        table.answers.insert(body.into(), rendered);
    });
}
