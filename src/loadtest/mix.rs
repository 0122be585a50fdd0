//! What a load test asks for: a mix of request kinds, rendered once into the bodies the
//! connections cycle through.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde_json::json;

/// The kinds of request a load test sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `POST /api/v1/predict` with a stored game's `game_id`.
    Stored,
    /// `POST /api/v1/predict` with teams and a date.
    Scheduled,
    /// `POST /api/v1/predict/batch`.
    Batch,
    /// `GET /api/v1/games/{game_id}/prediction` for a stored game: the route a balancer can
    /// hash on.
    Get,
}

impl Kind {
    pub const ALL: [Self; 4] = [Self::Stored, Self::Scheduled, Self::Batch, Self::Get];

    pub fn label(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Scheduled => "scheduled",
            Self::Batch => "batch",
            Self::Get => "get",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// `--mix stored=70,scheduled=20,batch=10,get=5,odds=25,batch_size=10`: the share of each kind
/// (relative weights), the percentage of requests that carry odds, and the items per batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    pub weights: BTreeMap<Kind, u32>,
    pub odds_percent: u32,
    pub batch_size: usize,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            weights: BTreeMap::from([(Kind::Stored, 1)]),
            odds_percent: 0,
            batch_size: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a mix: give `kind=weight` pairs (stored, scheduled, batch, get), and optionally odds=PERCENT and batch_size=N, e.g. stored=70,scheduled=20,batch=10,odds=25"
)]
pub struct MixError(String);

impl FromStr for Mix {
    type Err = MixError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || MixError(text.to_owned());
        let mut mix = Self {
            weights: BTreeMap::new(),
            ..Self::default()
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(error)?;
            let value: u32 = value.trim().parse().map_err(|_| error())?;
            match key.trim() {
                "stored" => mix.weights.insert(Kind::Stored, value),
                "scheduled" => mix.weights.insert(Kind::Scheduled, value),
                "batch" => mix.weights.insert(Kind::Batch, value),
                "get" => mix.weights.insert(Kind::Get, value),
                "odds" if value <= 100 => {
                    mix.odds_percent = value;
                    None
                }
                "batch_size" if (1..=1000).contains(&value) => {
                    mix.batch_size = value as usize;
                    None
                }
                _ => return Err(error()),
            };
        }
        mix.weights.retain(|_, weight| *weight > 0);
        if mix.weights.is_empty() {
            return Err(error());
        }
        Ok(mix)
    }
}

/// The games a load test asks about: stored game ids, and scheduled games.
#[derive(Debug, Clone, Default)]
pub struct Games {
    pub stored: Vec<String>,
    /// `(home, away, date)`.
    pub scheduled: Vec<(String, String, String)>,
}

/// One request, rendered: a GET when its body is empty, else a JSON POST.
#[derive(Debug, Clone)]
pub struct Planned {
    pub kind: Kind,
    pub path: String,
    pub body: Bytes,
}

/// The request bodies, in the proportions of `mix`: at most `limit` of them (the
/// connections cycle through the list), every kind at least once.
pub fn render(mix: &Mix, games: &Games, limit: usize) -> Vec<Planned> {
    let total: u32 = mix.weights.values().sum();
    // A stride coprime with the total visits every slot once per `total` requests.
    let stride = (37..=u32::MAX).find(|s| gcd(*s, total) == 1).unwrap_or(1);
    let mut planned = Vec::with_capacity(limit);
    let (mut stored, mut scheduled) = (games.stored.iter().cycle(), games.scheduled.iter().cycle());
    let mut odds_due = 0u32;
    for index in 0..limit {
        // Deal kinds by weight: the k-th request of every `total` goes to the kind whose
        // cumulative weight covers k, spread by a fixed stride so kinds interleave.
        let slot = ((index as u64 * u64::from(stride)) % u64::from(total)) as u32;
        let mut kind = Kind::Stored;
        let mut covered = 0;
        for (candidate, weight) in &mix.weights {
            covered += weight;
            if slot < covered {
                kind = *candidate;
                break;
            }
        }
        odds_due += mix.odds_percent;
        let odds = odds_due >= 100;
        if odds {
            odds_due -= 100;
        }
        let mut item = |kind: Kind| -> Option<serde_json::Value> {
            let mut body = match kind {
                Kind::Scheduled => {
                    let (home, away, date) = scheduled.next()?;
                    json!({ "game": { "home": home, "away": away, "date": date } })
                }
                _ => json!({ "game_id": stored.next()? }),
            };
            if odds {
                body["odds"] = json!({ "home": -135, "away": 115 });
            }
            Some(body)
        };
        let rendered = match kind {
            Kind::Batch => {
                let items: Vec<_> = (0..mix.batch_size)
                    .filter_map(|n| {
                        item(if n % 4 == 3 {
                            Kind::Scheduled
                        } else {
                            Kind::Stored
                        })
                    })
                    .collect();
                (!items.is_empty()).then(|| json!({ "items": items }))
            }
            // No body: its game goes in the path, below.
            Kind::Get => None,
            kind => item(kind),
        };
        if kind == Kind::Get {
            let Some(game) = stored.next() else { continue };
            let odds = if odds {
                "?home_odds=-135&away_odds=115"
            } else {
                ""
            };
            planned.push(Planned {
                kind,
                path: format!("/api/v1/games/{game}/prediction{odds}"),
                body: Bytes::new(),
            });
            continue;
        }
        let Some(body) = rendered else { continue };
        planned.push(Planned {
            kind,
            path: if kind == Kind::Batch {
                "/api/v1/predict/batch"
            } else {
                "/api/v1/predict"
            }
            .to_owned(),
            body: Bytes::from(body.to_string()),
        });
    }
    planned
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_refuse_what_cannot_be_dealt() {
        let mix: Mix = "stored=70, scheduled=20,batch=10,odds=25,batch_size=5"
            .parse()
            .expect("mix");
        assert_eq!(mix.weights[&Kind::Stored], 70);
        assert_eq!((mix.odds_percent, mix.batch_size), (25, 5));
        for bad in [
            "",
            "stored",
            "stored=x",
            "odds=101",
            "stored=0",
            "flights=3",
            "batch_size=0",
        ] {
            assert!(bad.parse::<Mix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rendering_follows_the_weights_and_the_odds_share() {
        let mix: Mix = "stored=70,scheduled=20,batch=10,odds=25"
            .parse()
            .expect("mix");
        let games = Games {
            stored: vec!["KCA202404100".into(), "BAL202403280".into()],
            scheduled: vec![("NYA".into(), "BOS".into(), "2025-04-05".into())],
        };
        let planned = render(&mix, &games, 1000);
        let count = |kind| planned.iter().filter(|p| p.kind == kind).count();
        assert_eq!(
            (
                count(Kind::Stored),
                count(Kind::Scheduled),
                count(Kind::Batch)
            ),
            (700, 200, 100)
        );
        let with_odds = planned
            .iter()
            .filter(|p| {
                p.kind != Kind::Batch
                    && std::str::from_utf8(&p.body).is_ok_and(|b| b.contains("odds"))
            })
            .count();
        assert!((200..=250).contains(&with_odds), "{with_odds}");
        assert!(
            planned
                .iter()
                .all(|p| p.path.starts_with("/api/v1/predict"))
        );
    }

    #[test]
    fn gets_name_their_game_in_the_path_and_carry_no_body() {
        let mix: Mix = "get=1,odds=50".parse().expect("mix");
        let games = Games {
            stored: vec!["KCA202404100".into(), "BAL202403280".into()],
            scheduled: Vec::new(),
        };
        let planned = render(&mix, &games, 8);
        let gets: Vec<_> = planned.iter().filter(|p| p.kind == Kind::Get).collect();
        assert_eq!(gets.len(), 8);
        for get in &gets {
            assert!(get.body.is_empty());
            assert!(get.path.starts_with("/api/v1/games/"), "{}", get.path);
        }
        assert!(
            gets.iter()
                .any(|g| g.path.ends_with("?home_odds=-135&away_odds=115"))
        );
        assert!(gets.iter().any(|g| g.path.ends_with("/prediction")));
    }
}
