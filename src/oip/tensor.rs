//! Tensors as the protocol sends them: a name, a datatype, a shape and the elements, row-major.
//! Elements arrive as JSON numbers or strings, as little-endian bytes (Triton's binary data
//! extension, gRPC's `raw_input_contents`) or as gRPC's typed contents; each becomes
//! [`Values`]: numbers as FP32 (what the model computes in) or byte strings.

use std::str::FromStr;

/// Elements a request may send at most, whatever its size limit allows: 256 rows of
/// features and then some. Refused before anything is allocated for them.
const MAX_ELEMENTS: usize = 1 << 20;

/// The protocol's datatypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bytes,
}

impl Datatype {
    const ALL: [Self; 13] = [
        Self::Bool,
        Self::Uint8,
        Self::Uint16,
        Self::Uint32,
        Self::Uint64,
        Self::Int8,
        Self::Int16,
        Self::Int32,
        Self::Int64,
        Self::Fp16,
        Self::Fp32,
        Self::Fp64,
        Self::Bytes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bool => "BOOL",
            Self::Uint8 => "UINT8",
            Self::Uint16 => "UINT16",
            Self::Uint32 => "UINT32",
            Self::Uint64 => "UINT64",
            Self::Int8 => "INT8",
            Self::Int16 => "INT16",
            Self::Int32 => "INT32",
            Self::Int64 => "INT64",
            Self::Fp16 => "FP16",
            Self::Fp32 => "FP32",
            Self::Fp64 => "FP64",
            Self::Bytes => "BYTES",
        }
    }

    /// Bytes per element in binary form; `None` for `BYTES` (each element length-prefixed).
    fn size(self) -> Option<usize> {
        match self {
            Self::Bool | Self::Uint8 | Self::Int8 => Some(1),
            Self::Uint16 | Self::Int16 | Self::Fp16 => Some(2),
            Self::Uint32 | Self::Int32 | Self::Fp32 => Some(4),
            Self::Uint64 | Self::Int64 | Self::Fp64 => Some(8),
            Self::Bytes => None,
        }
    }

    /// Whether bullpen reads numbers of this datatype (into FP32).
    fn is_numeric(self) -> bool {
        matches!(self, Self::Fp32 | Self::Fp64 | Self::Int32 | Self::Int64)
    }
}

impl FromStr for Datatype {
    type Err = TensorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|datatype| datatype.as_str() == text)
            .ok_or_else(|| TensorError::UnknownDatatype(text.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    #[error(
        "`{0}` is not a datatype (BOOL, UINT8 … UINT64, INT8 … INT64, FP16, FP32, FP64, BYTES)"
    )]
    UnknownDatatype(String),
    #[error(
        "input `{name}`: datatype {datatype} is not read here; send FP32 (or FP64, INT32, INT64) features, or BYTES for bullpen's game inputs"
    )]
    UnsupportedDatatype {
        name: String,
        datatype: &'static str,
    },
    #[error("input `{name}`: shape {shape:?} has a negative or too large dimension")]
    BadShape { name: String, shape: Vec<i64> },
    #[error("input `{name}`: shape {shape:?} holds {expected} elements, the data {got}")]
    CountMismatch {
        name: String,
        shape: Vec<i64>,
        expected: usize,
        got: usize,
    },
    #[error("input `{name}`: {expected} bytes of {datatype} data expected, {got} sent")]
    ByteCountMismatch {
        name: String,
        datatype: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("input `{name}`: BYTES element {index} runs past the end of the data")]
    TruncatedBytes { name: String, index: usize },
    #[error("input `{name}`: element {index} is not {wanted}")]
    BadElement {
        name: String,
        index: usize,
        wanted: &'static str,
    },
    #[error("input `{name}`: {value} is not exactly an FP32 value (integers up to 2^24)")]
    Inexact { name: String, value: i64 },
}

/// A tensor's elements, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Numbers(Vec<f32>),
    Bytes(Vec<Vec<u8>>),
}

/// One input tensor, checked: its elements fill its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: Datatype,
    pub shape: Vec<i64>,
    pub values: Values,
}

/// The elements `shape` holds, or why it cannot be a shape.
fn element_count(name: &str, shape: &[i64]) -> Result<usize, TensorError> {
    let bad = || TensorError::BadShape {
        name: name.to_owned(),
        shape: shape.to_vec(),
    };
    shape
        .iter()
        .try_fold(1usize, |count, &dim| {
            usize::try_from(dim)
                .ok()
                .and_then(|dim| count.checked_mul(dim))
        })
        .filter(|&count| count <= MAX_ELEMENTS)
        .ok_or_else(bad)
}

/// An integer element of input `name` as FP32, when it is exactly one.
pub fn exact(name: &str, value: i64) -> Result<f32, TensorError> {
    const LIMIT: i64 = 1 << 24;
    if (-LIMIT..=LIMIT).contains(&value) {
        Ok(value as f32)
    } else {
        Err(TensorError::Inexact {
            name: name.to_owned(),
            value,
        })
    }
}

impl Tensor {
    /// A tensor from elements already decoded; checks that they fill `shape`.
    pub fn new(
        name: String,
        datatype: Datatype,
        shape: Vec<i64>,
        values: Values,
    ) -> Result<Self, TensorError> {
        let expected = element_count(&name, &shape)?;
        let got = match &values {
            Values::Numbers(numbers) => numbers.len(),
            Values::Bytes(strings) => strings.len(),
        };
        if expected != got {
            return Err(TensorError::CountMismatch {
                name,
                shape,
                expected,
                got,
            });
        }
        Ok(Self {
            name,
            datatype,
            shape,
            values,
        })
    }

    /// Checks that bullpen reads `datatype` and that `shape` is one, before any element is
    /// decoded: the element count it promises.
    pub fn expect(name: &str, datatype: Datatype, shape: &[i64]) -> Result<usize, TensorError> {
        if !(datatype.is_numeric() || datatype == Datatype::Bytes) {
            return Err(TensorError::UnsupportedDatatype {
                name: name.to_owned(),
                datatype: datatype.as_str(),
            });
        }
        element_count(name, shape)
    }

    /// A tensor from little-endian binary data: `BYTES` elements each behind a 4-byte
    /// length, other datatypes packed.
    pub fn from_raw(
        name: String,
        datatype: Datatype,
        shape: Vec<i64>,
        raw: &[u8],
    ) -> Result<Self, TensorError> {
        let count = Self::expect(&name, datatype, &shape)?;
        let values = match datatype.size() {
            None => Values::Bytes(split_bytes(&name, raw)?),
            Some(size) => {
                if raw.len() != count * size {
                    return Err(TensorError::ByteCountMismatch {
                        name,
                        datatype: datatype.as_str(),
                        expected: count * size,
                        got: raw.len(),
                    });
                }
                Values::Numbers(decode_numbers(&name, datatype, raw)?)
            }
        };
        Self::new(name, datatype, shape, values)
    }

    /// A tensor from JSON elements, flat or nested row-major: numbers, or strings for
    /// `BYTES`.
    pub fn from_json(
        name: String,
        datatype: Datatype,
        shape: Vec<i64>,
        data: &serde_json::Value,
    ) -> Result<Self, TensorError> {
        let count = Self::expect(&name, datatype, &shape)?;
        let mut flat = Vec::with_capacity(count.min(4096));
        flatten(data, &mut flat, count);
        let wanted = if datatype == Datatype::Bytes {
            "a string"
        } else {
            "a number"
        };
        let bad = |index| TensorError::BadElement {
            name: name.clone(),
            index,
            wanted,
        };
        let values = if datatype == Datatype::Bytes {
            let strings = flat
                .iter()
                .enumerate()
                .map(|(index, value)| {
                    value
                        .as_str()
                        .map(|text| text.as_bytes().to_vec())
                        .ok_or_else(|| bad(index))
                })
                .collect::<Result<_, _>>()?;
            Values::Bytes(strings)
        } else {
            let numbers = flat
                .iter()
                .enumerate()
                .map(|(index, value)| {
                    json_number(&name, datatype, value).ok_or_else(|| bad(index))?
                })
                .collect::<Result<_, _>>()?;
            Values::Numbers(numbers)
        };
        Self::new(name, datatype, shape, values)
    }
}

/// A JSON element as FP32 for `datatype`: `None` when it is not a number of that kind.
fn json_number(
    name: &str,
    datatype: Datatype,
    value: &serde_json::Value,
) -> Option<Result<f32, TensorError>> {
    match datatype {
        Datatype::Int32 | Datatype::Int64 => value.as_i64().map(|value| exact(name, value)),
        _ => value.as_f64().map(|value| Ok(value as f32)),
    }
}

/// Appends the leaves of `data` (arrays flattened in order) to `flat`, stopping a little
/// past `limit` so a huge body cannot make a huge list.
fn flatten<'a>(data: &'a serde_json::Value, flat: &mut Vec<&'a serde_json::Value>, limit: usize) {
    match data {
        serde_json::Value::Array(items) => {
            for item in items {
                if flat.len() > limit {
                    return;
                }
                flatten(item, flat, limit);
            }
        }
        leaf => flat.push(leaf),
    }
}

/// Packed little-endian numbers as FP32.
fn decode_numbers(name: &str, datatype: Datatype, raw: &[u8]) -> Result<Vec<f32>, TensorError> {
    let four = |chunk: &[u8]| <[u8; 4]>::try_from(chunk).unwrap_or_default();
    let eight = |chunk: &[u8]| <[u8; 8]>::try_from(chunk).unwrap_or_default();
    match datatype {
        Datatype::Fp32 => Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(four(c)))
            .collect()),
        Datatype::Fp64 => Ok(raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(eight(c)) as f32)
            .collect()),
        Datatype::Int32 => raw
            .chunks_exact(4)
            .map(|c| exact(name, i64::from(i32::from_le_bytes(four(c)))))
            .collect(),
        Datatype::Int64 => raw
            .chunks_exact(8)
            .map(|c| exact(name, i64::from_le_bytes(eight(c))))
            .collect(),
        other => Err(TensorError::UnsupportedDatatype {
            name: name.to_owned(),
            datatype: other.as_str(),
        }),
    }
}

/// `BYTES` elements: each a 4-byte little-endian length, then that many bytes.
fn split_bytes(name: &str, mut raw: &[u8]) -> Result<Vec<Vec<u8>>, TensorError> {
    let mut elements = Vec::new();
    while !raw.is_empty() {
        let index = elements.len();
        let truncated = || TensorError::TruncatedBytes {
            name: name.to_owned(),
            index,
        };
        let (length, rest) = raw.split_first_chunk::<4>().ok_or_else(truncated)?;
        let length = u32::from_le_bytes(*length) as usize;
        if rest.len() < length {
            return Err(truncated());
        }
        let (element, rest) = rest.split_at(length);
        elements.push(element.to_vec());
        raw = rest;
        if elements.len() > MAX_ELEMENTS {
            return Err(truncated());
        }
    }
    Ok(elements)
}

/// `values` as little-endian FP32 bytes: an output's binary form.
pub fn fp32_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp32(values: &[f32]) -> Vec<u8> {
        fp32_bytes(values)
    }

    #[test]
    fn binary_fp32_fills_its_shape() {
        let tensor = Tensor::from_raw(
            "x".into(),
            Datatype::Fp32,
            vec![2, 2],
            &fp32(&[1.0, 2.0, 3.0, 4.5]),
        )
        .expect("valid");
        assert_eq!(tensor.values, Values::Numbers(vec![1.0, 2.0, 3.0, 4.5]));
    }

    #[test]
    fn a_byte_count_that_does_not_fill_the_shape_is_refused() {
        let error = Tensor::from_raw("x".into(), Datatype::Fp32, vec![2, 2], &fp32(&[1.0, 2.0]))
            .expect_err("short");
        assert!(matches!(
            error,
            TensorError::ByteCountMismatch {
                expected: 16,
                got: 8,
                ..
            }
        ));
        let odd = Tensor::from_raw("x".into(), Datatype::Fp32, vec![1], &[0, 0, 0])
            .expect_err("three bytes");
        assert!(matches!(odd, TensorError::ByteCountMismatch { .. }));
    }

    #[test]
    fn bytes_elements_are_length_prefixed_and_a_truncated_one_is_refused() {
        let mut raw = Vec::new();
        for text in ["NYA202404050", "KCA202404100"] {
            raw.extend_from_slice(&(text.len() as u32).to_le_bytes());
            raw.extend_from_slice(text.as_bytes());
        }
        let tensor =
            Tensor::from_raw("game_id".into(), Datatype::Bytes, vec![2], &raw).expect("valid");
        assert_eq!(
            tensor.values,
            Values::Bytes(vec![b"NYA202404050".to_vec(), b"KCA202404100".to_vec()])
        );
        let cut = Tensor::from_raw(
            "game_id".into(),
            Datatype::Bytes,
            vec![2],
            &raw[..raw.len() - 1],
        );
        assert!(matches!(
            cut,
            Err(TensorError::TruncatedBytes { index: 1, .. })
        ));
        let huge_length = [0xff, 0xff, 0xff, 0xff, b'a'];
        let huge = Tensor::from_raw("game_id".into(), Datatype::Bytes, vec![1], &huge_length);
        assert!(matches!(
            huge,
            Err(TensorError::TruncatedBytes { index: 0, .. })
        ));
        let short_prefix = Tensor::from_raw("game_id".into(), Datatype::Bytes, vec![1], &[1, 0]);
        assert!(matches!(
            short_prefix,
            Err(TensorError::TruncatedBytes { .. })
        ));
        let fewer = Tensor::from_raw("game_id".into(), Datatype::Bytes, vec![3], &raw);
        assert!(matches!(
            fewer,
            Err(TensorError::CountMismatch {
                expected: 3,
                got: 2,
                ..
            })
        ));
    }

    #[test]
    fn json_data_may_be_flat_or_nested() {
        let flat = serde_json::json!([1, 2.5, 3, 4]);
        let nested = serde_json::json!([[1, 2.5], [3, 4]]);
        for data in [flat, nested] {
            let tensor =
                Tensor::from_json("x".into(), Datatype::Fp32, vec![2, 2], &data).expect("valid");
            assert_eq!(tensor.values, Values::Numbers(vec![1.0, 2.5, 3.0, 4.0]));
        }
        let strings = serde_json::json!(["NYA202404050"]);
        let tensor =
            Tensor::from_json("game_id".into(), Datatype::Bytes, vec![1], &strings).expect("valid");
        assert_eq!(tensor.values, Values::Bytes(vec![b"NYA202404050".to_vec()]));
    }

    #[test]
    fn json_data_of_the_wrong_kind_or_count_is_refused() {
        let cases = [
            (Datatype::Fp32, vec![2], serde_json::json!([1, "a"])),
            (Datatype::Fp32, vec![3], serde_json::json!([1, 2])),
            (Datatype::Fp32, vec![1], serde_json::json!([1, 2])),
            (Datatype::Bytes, vec![1], serde_json::json!([1])),
            (Datatype::Int64, vec![1], serde_json::json!([1.5])),
            (Datatype::Int64, vec![1], serde_json::json!([16_777_217])),
            (Datatype::Fp32, vec![-1, 27], serde_json::json!([])),
            (Datatype::Fp32, vec![i64::MAX, 2], serde_json::json!([])),
            (Datatype::Bool, vec![1], serde_json::json!([true])),
        ];
        for (datatype, shape, data) in cases {
            let parsed = Tensor::from_json("x".into(), datatype, shape.clone(), &data);
            assert!(parsed.is_err(), "{datatype:?} {shape:?} {data}");
        }
    }

    #[test]
    fn integers_and_doubles_become_fp32() {
        let mut raw = Vec::new();
        for value in [3_i64, -7] {
            raw.extend_from_slice(&value.to_le_bytes());
        }
        let tensor = Tensor::from_raw("x".into(), Datatype::Int64, vec![2], &raw).expect("valid");
        assert_eq!(tensor.values, Values::Numbers(vec![3.0, -7.0]));
        let doubles: Vec<u8> = [0.1_f64].iter().flat_map(|v| v.to_le_bytes()).collect();
        let tensor =
            Tensor::from_raw("x".into(), Datatype::Fp64, vec![1], &doubles).expect("valid");
        assert_eq!(tensor.values, Values::Numbers(vec![0.1_f32]));
    }

    #[test]
    fn datatypes_parse_by_their_protocol_names() {
        for datatype in Datatype::ALL {
            assert_eq!(datatype.as_str().parse::<Datatype>(), Ok(datatype));
        }
        assert!("fp32".parse::<Datatype>().is_err());
    }
}
