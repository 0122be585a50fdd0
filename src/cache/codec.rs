//! The shared tier's value encoding: compact, and versioned so that a replica of another
//! version reads a value it does not understand as a miss, never as garbage.
//!
//! Layout: `b'B'`, the encoding version, the value kind, then the value's bytes.

use chrono::NaiveDate;

use crate::features::{FeatureVector, GameFeatures, GameInfo, WIDTH};
use crate::games::{PitcherId, Starters};

const MAGIC: u8 = b'B';
/// 2: the features of spec `v2` and the game's starters.
const VERSION: u8 = 2;

/// A value that can live in the shared tier.
pub trait Codec: Sized {
    const KIND: u8;
    fn encode_body(&self, out: &mut Vec<u8>);
    fn decode_body(bytes: &[u8]) -> Option<Self>;

    fn encode(&self) -> Vec<u8> {
        let mut out = vec![MAGIC, VERSION, Self::KIND];
        self.encode_body(&mut out);
        out
    }

    /// `None` for bytes of another version or kind, or that are cut short.
    fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [MAGIC, VERSION, kind, body @ ..] if *kind == Self::KIND => Self::decode_body(body),
            _ => None,
        }
    }
}

impl Codec for f32 {
    const KIND: u8 = 1;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }

    fn decode_body(bytes: &[u8]) -> Option<Self> {
        Some(f32::from_le_bytes(bytes.try_into().ok()?))
    }
}

impl Codec for GameFeatures {
    const KIND: u8 = 2;

    /// Game id (12 bytes, or 12 zeros for a scheduled game), home and away (3 each), the
    /// date as days since 1970-01-01 (i32), the home and away starters (8 bytes each, zeros
    /// when not named), then the features (f32 each), little-endian.
    fn encode_body(&self, out: &mut Vec<u8>) {
        let game = &self.game;
        match game.game_id {
            Some(id) => out.extend_from_slice(id.as_str().as_bytes()),
            None => out.extend_from_slice(&[0; 12]),
        }
        out.extend_from_slice(game.home.as_str().as_bytes());
        out.extend_from_slice(game.away.as_str().as_bytes());
        let days = (game.date - NaiveDate::default()).num_days();
        out.extend_from_slice(&i32::try_from(days).unwrap_or(i32::MAX).to_le_bytes());
        for starter in [game.starters.home, game.starters.away] {
            match starter {
                Some(id) => out.extend_from_slice(id.as_str().as_bytes()),
                None => out.extend_from_slice(&[0; 8]),
            }
        }
        for value in self.vector.values() {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }

    fn decode_body(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 12 + 3 + 3 + 4 + 2 * 8 + WIDTH * 4 {
            return None;
        }
        let text = |range: std::ops::Range<usize>| std::str::from_utf8(&bytes[range]).ok();
        let game_id = if bytes[..12] == [0; 12] {
            None
        } else {
            Some(text(0..12)?.parse().ok()?)
        };
        let days = i32::from_le_bytes(bytes[18..22].try_into().ok()?);
        let date =
            NaiveDate::default().checked_add_signed(chrono::TimeDelta::days(i64::from(days)))?;
        let starter = |at: usize| -> Option<Option<PitcherId>> {
            if bytes[at..at + 8] == [0; 8] {
                return Some(None);
            }
            Some(Some(text(at..at + 8)?.parse().ok()?))
        };
        let starters = Starters {
            home: starter(22)?,
            away: starter(30)?,
        };
        let mut values = [0f32; WIDTH];
        for (value, chunk) in values.iter_mut().zip(bytes[38..].chunks_exact(4)) {
            *value = f32::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(Self {
            game: GameInfo {
                game_id,
                home: text(12..15)?.parse().ok()?,
                away: text(15..18)?.parse().ok()?,
                date,
                starters,
            },
            vector: FeatureVector(values),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GameFeatures {
        let mut values = [0f32; WIDTH];
        values[0] = 1512.25;
        values[WIDTH - 1] = -0.5;
        GameFeatures {
            game: GameInfo {
                game_id: Some("KCA202404100".parse().expect("id")),
                home: "KCA".parse().expect("team"),
                away: "HOU".parse().expect("team"),
                date: "2024-04-10".parse().expect("date"),
                starters: Starters {
                    home: Some("lugos001".parse().expect("pitcher")),
                    away: None,
                },
            },
            vector: FeatureVector(values),
        }
    }

    #[test]
    fn values_round_trip() {
        assert_eq!(f32::decode(&0.4507f32.encode()), Some(0.4507));
        let features = sample();
        assert_eq!(GameFeatures::decode(&features.encode()), Some(features));
        let mut scheduled = sample();
        scheduled.game.game_id = None;
        assert_eq!(GameFeatures::decode(&scheduled.encode()), Some(scheduled));
    }

    #[test]
    fn other_versions_kinds_and_short_values_are_misses() {
        let mut bytes = 0.5f32.encode();
        assert_eq!(GameFeatures::decode(&bytes), None, "another kind");
        bytes[1] = VERSION + 1;
        assert_eq!(f32::decode(&bytes), None, "another version");
        assert_eq!(f32::decode(&bytes[..5]), None, "cut short");
        assert_eq!(f32::decode(b"garbage!"), None);
    }
}
