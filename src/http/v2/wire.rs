//! The REST wire format of the Open Inference Protocol: the JSON bodies, and Triton's binary
//! tensor data extension. A request whose `Inference-Header-Content-Length` header is set
//! holds that many bytes of JSON, then the binary data of each input whose parameters give
//! `binary_data_size`, in input order. An answer with binary outputs is framed the same way.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::oip::{Datatype, InferAnswer, InferRequest, OipError, RequestedOutput, Tensor};

/// Says how many leading bytes of a body are its JSON header.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// `POST /v2/models/{model}[/versions/{version}]/infer`.
#[derive(Debug, Deserialize, ToSchema)]
pub(in crate::http) struct InferBody {
    /// Echoed in the answer.
    id: Option<String>,
    /// `binary_data_output: true` asks every output in binary.
    #[serde(default)]
    #[schema(value_type = Object)]
    parameters: Map<String, Value>,
    inputs: Vec<InputBody>,
    /// The outputs to answer (default: all of them).
    #[serde(default)]
    outputs: Vec<OutputBody>,
}

/// One input tensor: `data` flat row-major or nested, or `binary_data_size` bytes of the
/// binary section.
#[derive(Debug, Deserialize, ToSchema)]
pub(in crate::http) struct InputBody {
    #[schema(example = "input")]
    name: String,
    #[schema(example = json!([1, 27]))]
    shape: Vec<i64>,
    #[schema(example = "FP32")]
    datatype: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    parameters: Map<String, Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    data: Option<Value>,
}

/// An output asked for; `parameters.binary_data: true` asks it in binary.
#[derive(Debug, Deserialize, ToSchema)]
pub(in crate::http) struct OutputBody {
    #[schema(example = "home_win_probability")]
    name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    parameters: Map<String, Value>,
}

/// The answer's JSON (its header, when outputs are binary).
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct InferResponseBody {
    #[schema(example = "home_win")]
    model_name: String,
    #[schema(example = "2")]
    model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// `bullpen_model_versions`: each row's version, when rows were routed to several.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    parameters: Option<Value>,
    outputs: Vec<OutputTensorBody>,
}

/// One output tensor: `data` inline, or `parameters.binary_data_size` bytes after the JSON.
#[derive(Debug, Serialize, ToSchema)]
pub(in crate::http) struct OutputTensorBody {
    name: String,
    #[schema(example = "FP32")]
    datatype: &'static str,
    shape: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Vec<f32>>,
}

/// The JSON header and the binary section of a body.
pub fn split<'a>(
    body: &'a [u8],
    header_length: Option<&str>,
) -> Result<(&'a [u8], &'a [u8]), OipError> {
    let Some(text) = header_length else {
        return Ok((body, &[]));
    };
    let length = text.trim().parse::<usize>().map_err(|_| {
        OipError::invalid(format!(
            "Inference-Header-Content-Length `{text}` is not a byte count"
        ))
    })?;
    if length > body.len() {
        return Err(OipError::invalid(format!(
            "Inference-Header-Content-Length is {length}, the body only {} bytes",
            body.len()
        )));
    }
    Ok(body.split_at(length))
}

fn flag(parameters: &Map<String, Value>, name: &str) -> Result<bool, OipError> {
    match parameters.get(name) {
        None => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(other) => Err(OipError::invalid(format!(
            "parameter `{name}` is {other}, not true or false"
        ))),
    }
}

/// Parses a request: its JSON header, and each binary input's bytes from `binary`, which
/// they must use exactly.
pub fn parse(
    json: &[u8],
    mut binary: &[u8],
    model: String,
    version: Option<String>,
    max_rows: usize,
) -> Result<InferRequest, OipError> {
    let body: InferBody = serde_json::from_slice(json)
        .map_err(|error| OipError::invalid(format!("the body is not an infer request: {error}")))?;
    let mut inputs = Vec::with_capacity(body.inputs.len());
    for input in body.inputs {
        let datatype: Datatype = input.datatype.parse()?;
        let tensor = match (input.parameters.get("binary_data_size"), &input.data) {
            (Some(size), None) => {
                let size = size
                    .as_u64()
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| {
                        OipError::invalid(format!(
                            "input `{}`: binary_data_size {size} is not a byte count",
                            input.name
                        ))
                    })?;
                if size > binary.len() {
                    return Err(OipError::invalid(format!(
                        "input `{}`: binary_data_size is {size}, {} bytes of binary data are left",
                        input.name,
                        binary.len()
                    )));
                }
                let (raw, rest) = binary.split_at(size);
                binary = rest;
                Tensor::from_raw(input.name, datatype, input.shape, raw)?
            }
            (None, Some(data)) => Tensor::from_json(input.name, datatype, input.shape, data)?,
            (Some(_), Some(_)) => {
                return Err(OipError::invalid(format!(
                    "input `{}` has both `data` and binary_data_size",
                    input.name
                )));
            }
            (None, None) => {
                return Err(OipError::invalid(format!(
                    "input `{}` has no `data` and no binary_data_size",
                    input.name
                )));
            }
        };
        inputs.push(tensor);
    }
    if !binary.is_empty() {
        return Err(OipError::invalid(format!(
            "{} bytes of binary data belong to no input",
            binary.len()
        )));
    }
    let outputs = body
        .outputs
        .into_iter()
        .map(|output| {
            Ok(RequestedOutput {
                binary: flag(&output.parameters, "binary_data")?,
                name: output.name,
            })
        })
        .collect::<Result<_, OipError>>()?;
    Ok(InferRequest {
        model,
        version,
        id: body.id,
        inputs,
        outputs,
        binary_outputs: flag(&body.parameters, "binary_data_output")?,
        max_rows,
    })
}

/// An answer as its JSON and, when some outputs are binary, the binary section after it.
pub fn render(answer: InferAnswer) -> (Vec<u8>, Option<usize>) {
    let mut binary = Vec::new();
    let outputs = answer
        .outputs
        .into_iter()
        .map(|output| {
            let (parameters, data) = if output.binary {
                let bytes = crate::oip::fp32_bytes(&output.data);
                let size = bytes.len();
                binary.extend_from_slice(&bytes);
                (Some(serde_json::json!({ "binary_data_size": size })), None)
            } else {
                (None, Some(output.data))
            };
            OutputTensorBody {
                name: output.name,
                datatype: "FP32",
                shape: output.shape,
                parameters,
                data,
            }
        })
        .collect();
    let body = InferResponseBody {
        model_name: answer.model,
        model_version: answer.version,
        id: answer.id,
        parameters: answer
            .versions
            .map(|versions| serde_json::json!({ "bullpen_model_versions": versions })),
        outputs,
    };
    let mut bytes = serde_json::to_vec(&body).expect("an answer serialises; this is a bug");
    if binary.is_empty() {
        return (bytes, None);
    }
    let header = bytes.len();
    bytes.extend_from_slice(&binary);
    (bytes, Some(header))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp32(values: &[f32]) -> Vec<u8> {
        crate::oip::fp32_bytes(values)
    }

    fn request(json: &Value, binary: &[u8]) -> (Vec<u8>, String) {
        let mut body = serde_json::to_vec(json).expect("json");
        let header = body.len().to_string();
        body.extend_from_slice(binary);
        (body, header)
    }

    fn parsed(body: &[u8], header: Option<&str>) -> Result<InferRequest, OipError> {
        let (json, binary) = split(body, header)?;
        parse(json, binary, "home_win".into(), None, 256)
    }

    #[test]
    fn binary_inputs_take_their_bytes_in_order() {
        let json = serde_json::json!({"inputs": [
            {"name": "input", "shape": [1, 2], "datatype": "FP32",
             "parameters": {"binary_data_size": 8}},
            {"name": "other", "shape": [1], "datatype": "FP32", "data": [5.0]}],
            "outputs": [{"name": "home_win_probability", "parameters": {"binary_data": true}}]});
        let (body, header) = request(&json, &fp32(&[1.5, 2.5]));
        let parsed = parsed(&body, Some(&header)).expect("valid");
        assert_eq!(
            parsed.inputs[0].values,
            crate::oip::Values::Numbers(vec![1.5, 2.5])
        );
        assert!(parsed.outputs[0].binary);
    }

    #[test]
    fn malformed_framing_is_refused_never_a_panic() {
        let json = serde_json::json!({"inputs": [
            {"name": "input", "shape": [1, 2], "datatype": "FP32",
             "parameters": {"binary_data_size": 8}}]});
        let (body, header) = request(&json, &fp32(&[1.5, 2.5]));
        let cases: Vec<(Vec<u8>, Option<String>)> = vec![
            // A header length past the end of the body.
            (body.clone(), Some((body.len() + 1).to_string())),
            // Not a number, negative.
            (body.clone(), Some("ten".into())),
            (body.clone(), Some("-4".into())),
            // The header length cuts the JSON short.
            (body.clone(), Some("10".into())),
            // Truncated binary data.
            (body[..body.len() - 1].to_vec(), Some(header.clone())),
            // Bytes left over.
            ([body.as_slice(), &[0, 0]].concat(), Some(header.clone())),
            // No header: the binary bytes make the JSON invalid.
            (body.clone(), None),
        ];
        for (body, header) in cases {
            assert!(parsed(&body, header.as_deref()).is_err(), "{header:?}");
        }
    }

    #[test]
    fn a_shape_that_does_not_match_the_binary_size_is_refused() {
        let json = serde_json::json!({"inputs": [
            {"name": "input", "shape": [2, 2], "datatype": "FP32",
             "parameters": {"binary_data_size": 8}}]});
        let (body, header) = request(&json, &fp32(&[1.5, 2.5]));
        assert!(parsed(&body, Some(&header)).is_err());
        let bad_size = serde_json::json!({"inputs": [
            {"name": "input", "shape": [1], "datatype": "FP32",
             "parameters": {"binary_data_size": -1}}]});
        let (body, header) = request(&bad_size, &[]);
        assert!(parsed(&body, Some(&header)).is_err());
    }

    #[test]
    fn binary_outputs_follow_the_json_header() {
        let answer = InferAnswer {
            model: "home_win".into(),
            version: "2".into(),
            versions: None,
            id: Some("a".into()),
            outputs: vec![
                crate::oip::OutputTensor {
                    name: "home_win_probability".into(),
                    shape: vec![2],
                    data: vec![0.25, 0.75],
                    binary: true,
                },
                crate::oip::OutputTensor {
                    name: "probabilities".into(),
                    shape: vec![2, 2],
                    data: vec![0.75, 0.25, 0.25, 0.75],
                    binary: false,
                },
            ],
        };
        let (body, header) = render(answer);
        let header = header.expect("binary");
        let json: Value = serde_json::from_slice(&body[..header]).expect("json");
        assert_eq!(json["outputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(
            json["outputs"][1]["data"],
            serde_json::json!([0.75, 0.25, 0.25, 0.75])
        );
        assert_eq!(&body[header..], fp32(&[0.25, 0.75]).as_slice());
    }

    proptest::proptest! {
        /// Whatever the bytes and the header say, parsing answers and never panics.
        #[test]
        fn any_body_parses_or_is_refused(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
            header in proptest::option::of(0usize..300),
            size in 0i64..64,
            dim in -2i64..40,
        ) {
            let header = header.map(|n| n.to_string());
            let _ = parsed(&body, header.as_deref());
            let json = serde_json::json!({"inputs": [
                {"name": "input", "shape": [dim, 2], "datatype": "FP32",
                 "parameters": {"binary_data_size": size}}]});
            let (framed, header) = request(&json, &body);
            let _ = parsed(&framed, Some(&header));
        }
    }
}
