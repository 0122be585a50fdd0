//! An infer request as both transports parse it, and the one call that scores it: inputs
//! read as feature rows or as bullpen's game inputs, outputs chosen, the model asked once
//! through the prediction service.

use std::sync::Arc;

use chrono::NaiveDate;

use super::error::OipError;
use super::metadata::{HOME_WIN_OUTPUT, output_names};
use super::tensor::{Datatype, Tensor, Values};
use crate::games::{GameId, GameRef, PitcherId, Starters, TeamCode, parse_date};
use crate::models::ServedModel;
use crate::predict::{Caller, InferInput, PredictService};

/// An output the client asked for, and whether it wants it in binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedOutput {
    pub name: String,
    pub binary: bool,
}

/// What an infer call asks, whatever it came over.
#[derive(Debug, Clone, PartialEq)]
pub struct InferRequest {
    pub model: String,
    pub version: Option<String>,
    pub id: Option<String>,
    pub inputs: Vec<Tensor>,
    /// Empty: every output, in binary when `binary_outputs`.
    pub outputs: Vec<RequestedOutput>,
    pub binary_outputs: bool,
    /// The most rows one call may score (`server.max_batch`).
    pub max_rows: usize,
}

impl InferRequest {
    /// The rows it scores, as the rate limit charges them: the first dimension of its first
    /// input (at least 1).
    pub fn rows(&self) -> usize {
        self.inputs
            .first()
            .and_then(|input| input.shape.first())
            .map_or(1, |rows| usize::try_from(*rows).unwrap_or(1).max(1))
    }
}

/// One output tensor of the answer: always FP32.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
    pub binary: bool,
}

/// The answer to an [`InferRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct InferAnswer {
    pub model: String,
    /// The version that answered; when rows were routed to different versions (games
    /// during a split rollout), the newest of them, and `versions` names each row's.
    pub version: String,
    pub versions: Option<Vec<String>>,
    pub id: Option<String>,
    pub outputs: Vec<OutputTensor>,
}

/// The bullpen inputs that name games.
const GAME_ID: &str = "game_id";
const SCHEDULED: [&str; 3] = ["home", "away", "date"];
/// Optional beside [`SCHEDULED`]: each side's starter by Retrosheet id (empty: not named).
const STARTERS: [&str; 2] = ["home_starter", "away_starter"];

/// Scores `request` with `service`: the inputs read against the model's metadata, the
/// outputs checked, then one [`PredictService::infer`] call.
pub async fn infer(
    service: &PredictService,
    request: InferRequest,
    caller: &Caller,
) -> Result<InferAnswer, OipError> {
    let snapshot = service.catalog().snapshot();
    let model = snapshot.unrouted(&request.model, request.version.as_deref())?;
    let outputs = requested(&model, &request)?;
    let input = read_input(&model, request.inputs, request.max_rows)?;
    // Boxed: a game's features are 400 bytes, and this future holds many.
    let inferred =
        Box::pin(service.infer(&request.model, request.version.as_deref(), input, caller)).await?;
    let rows = inferred.home_win.len();
    let outputs = outputs
        .into_iter()
        .map(|(name, binary)| {
            let (shape, data) = if name == HOME_WIN_OUTPUT {
                (vec![rows as i64], inferred.home_win.clone())
            } else {
                let classes = inferred
                    .home_win
                    .iter()
                    .flat_map(|p| [1.0 - p, *p])
                    .collect();
                (vec![rows as i64, 2], classes)
            };
            OutputTensor {
                name,
                shape,
                data,
                binary,
            }
        })
        .collect();
    let (version, versions) = answered_by(&inferred.models, &model);
    Ok(InferAnswer {
        model: request.model,
        version,
        versions,
        id: request.id,
        outputs,
    })
}

/// The version to name in the answer, and each row's when they differ.
fn answered_by(
    models: &[Arc<ServedModel>],
    fallback: &ServedModel,
) -> (String, Option<Vec<String>>) {
    let Some(first) = models.first() else {
        return (fallback.version.to_string(), None);
    };
    if models.iter().all(|m| m.version == first.version) {
        return (first.version.to_string(), None);
    }
    let newest = models
        .iter()
        .map(|m| &m.version)
        .max_by(|a, b| crate::models::compare_versions(a, b))
        .map_or_else(String::new, ToString::to_string);
    let each = models.iter().map(|m| m.version.to_string()).collect();
    (newest, Some(each))
}

/// The outputs to answer, in order, each with whether it goes in binary.
fn requested(model: &ServedModel, request: &InferRequest) -> Result<Vec<(String, bool)>, OipError> {
    let names = output_names(model);
    if request.outputs.is_empty() {
        return Ok(names
            .into_iter()
            .map(|name| (name, request.binary_outputs))
            .collect());
    }
    request
        .outputs
        .iter()
        .map(|output| {
            if names.contains(&output.name) {
                Ok((output.name.clone(), output.binary))
            } else {
                Err(OipError::invalid(format!(
                    "model `{}` has no output `{}` (it has {})",
                    model.name,
                    output.name,
                    names.join(", ")
                )))
            }
        })
        .collect()
}

/// The inputs as feature rows (the model's input) or as games (bullpen's inputs).
fn read_input(
    model: &ServedModel,
    inputs: Vec<Tensor>,
    max_rows: usize,
) -> Result<InferInput, OipError> {
    let names: Vec<&str> = inputs.iter().map(|input| input.name.as_str()).collect();
    let feature_input = model.manifest.input.as_str();
    let input = match names.as_slice() {
        [name] if *name == feature_input => {
            let [tensor] = <[Tensor; 1]>::try_from(inputs).map_err(|_| unexpected(model))?;
            features(tensor, max_rows)?
        }
        [GAME_ID] => {
            let [tensor] = <[Tensor; 1]>::try_from(inputs).map_err(|_| unexpected(model))?;
            let ids = strings(&tensor, max_rows)?;
            let games = ids
                .iter()
                .map(|id| {
                    id.parse::<GameId>()
                        .map(GameRef::Stored)
                        .map_err(|error| OipError::invalid(format!("input `game_id`: {error}")))
                })
                .collect::<Result<_, _>>()?;
            InferInput::Games(games)
        }
        _ if is_scheduled(&names) => scheduled(&inputs, max_rows)?,
        _ => return Err(unexpected(model)),
    };
    Ok(input)
}

/// Whether `names` are `home`, `away` and `date`, each once, and any of the starters once.
fn is_scheduled(names: &[&str]) -> bool {
    let mut unique = names.to_vec();
    unique.sort_unstable();
    unique.dedup();
    unique.len() == names.len()
        && SCHEDULED.iter().all(|wanted| names.contains(wanted))
        && names
            .iter()
            .all(|name| SCHEDULED.contains(name) || STARTERS.contains(name))
}

fn unexpected(model: &ServedModel) -> OipError {
    OipError::invalid(format!(
        "model `{}` takes input `{}` (FP32 [-1, {}]), or bullpen's BYTES inputs `game_id`, or `home`, `away` and `date` (and `home_starter`, `away_starter`)",
        model.name,
        model.manifest.input,
        model.manifest.feature_spec.names.len()
    ))
}

/// Feature rows from a `[rows, width]` numeric tensor.
fn features(tensor: Tensor, max_rows: usize) -> Result<InferInput, OipError> {
    let Values::Numbers(values) = tensor.values else {
        return Err(OipError::invalid(format!(
            "input `{}` holds features: send FP32 numbers, not {}",
            tensor.name,
            tensor.datatype.as_str()
        )));
    };
    let &[rows, width] = tensor.shape.as_slice() else {
        return Err(OipError::invalid(format!(
            "input `{}` has shape {:?}: features are [rows, features]",
            tensor.name, tensor.shape
        )));
    };
    check_rows(&tensor.name, rows as usize, max_rows)?;
    Ok(InferInput::Features {
        width: width as usize,
        values,
    })
}

fn check_rows(name: &str, rows: usize, max_rows: usize) -> Result<(), OipError> {
    if rows == 0 {
        return Err(OipError::invalid(format!("input `{name}` has no rows")));
    }
    if rows > max_rows {
        return Err(OipError::invalid(format!(
            "input `{name}` has {rows} rows; at most {max_rows} per request (server.max_batch)"
        )));
    }
    Ok(())
}

/// The UTF-8 strings of a `BYTES` tensor of shape `[n]` or `[n, 1]`.
fn strings(tensor: &Tensor, max_rows: usize) -> Result<Vec<String>, OipError> {
    let Values::Bytes(elements) = &tensor.values else {
        return Err(OipError::invalid(format!(
            "input `{}` is BYTES, not {}",
            tensor.name,
            tensor.datatype.as_str()
        )));
    };
    debug_assert_eq!(tensor.datatype, Datatype::Bytes);
    if !matches!(tensor.shape.as_slice(), [_] | [_, 1]) {
        return Err(OipError::invalid(format!(
            "input `{}` has shape {:?}: one value per row, [rows] or [rows, 1]",
            tensor.name, tensor.shape
        )));
    }
    check_rows(&tensor.name, elements.len(), max_rows)?;
    elements
        .iter()
        .map(|element| {
            String::from_utf8(element.clone())
                .map_err(|_| OipError::invalid(format!("input `{}` is not UTF-8", tensor.name)))
        })
        .collect()
}

/// Scheduled games from the `home`, `away` and `date` inputs, row by row.
fn scheduled(inputs: &[Tensor], max_rows: usize) -> Result<InferInput, OipError> {
    let column = |name: &str| {
        let tensor = inputs
            .iter()
            .find(|input| input.name == name)
            .ok_or_else(|| OipError::invalid(format!("input `{name}` is missing")))?;
        strings(tensor, max_rows)
    };
    let (homes, aways, dates) = (column("home")?, column("away")?, column("date")?);
    let starters = |name: &str| -> Result<Vec<Option<PitcherId>>, OipError> {
        if !inputs.iter().any(|input| input.name == name) {
            return Ok(vec![None; homes.len()]);
        }
        column(name)?
            .iter()
            .map(|id| match id.as_str() {
                "" => Ok(None),
                id => id
                    .parse()
                    .map(Some)
                    .map_err(|error| OipError::invalid(format!("input `{name}`: {error}"))),
            })
            .collect()
    };
    let (home_starters, away_starters) = (starters(STARTERS[0])?, starters(STARTERS[1])?);
    let rows = homes.len();
    if [
        aways.len(),
        dates.len(),
        home_starters.len(),
        away_starters.len(),
    ]
    .iter()
    .any(|len| *len != rows)
    {
        return Err(OipError::invalid(
            "inputs `home`, `away`, `date` and the starters must have as many rows",
        ));
    }
    let team = |name: &str, code: &str| {
        code.parse::<TeamCode>()
            .map_err(|error| OipError::invalid(format!("input `{name}`: {error}")))
    };
    let games = homes
        .iter()
        .zip(&aways)
        .zip(&dates)
        .zip(home_starters.into_iter().zip(away_starters))
        .map(|(((home, away), date), (home_starter, away_starter))| {
            let date: NaiveDate = parse_date(date).ok_or_else(|| {
                OipError::invalid(format!(
                    "input `date`: `{date}` is not a date in YYYY-MM-DD form"
                ))
            })?;
            Ok(GameRef::Scheduled {
                home: team("home", home)?,
                away: team("away", away)?,
                date,
                number: None,
                starters: Starters {
                    home: home_starter,
                    away: away_starter,
                },
            })
        })
        .collect::<Result<_, OipError>>()?;
    Ok(InferInput::Games(games))
}
