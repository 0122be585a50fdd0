//! Betting maths: market odds parsed at the edge, their vig-free probabilities, and the edge,
//! expected value and Kelly stake of the model's probability against them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OddsFormat {
    /// `-150`, `+130`: |odds| from 100 to 100,000.
    American,
    /// `1.67`, `2.30`: the total returned per unit staked, above 1 and at most 1,001 (the
    /// same range as American odds).
    Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OddsError {
    #[error("American odds must be from -100,000 to -100 or from +100 to +100,000, got {0}")]
    American(String),
    #[error("decimal odds must be above 1.0 and at most 1001, got {0}")]
    Decimal(String),
    #[error(
        "the implied probabilities of {0} and {1} add up to less than 1: no book prices a \
         market below even, so one side is mistyped"
    )]
    BelowEven(String, String),
    #[error(
        "the implied probabilities of {0} and {1} add up to {2}: a margin over 25 % is no \
         book's two-way price, so one side is mistyped"
    )]
    TooMuchMargin(String, String, String),
    #[error(
        "cannot tell whether {0} and {1} are American or decimal odds; add \"format\": \"american\" or \"decimal\""
    )]
    Ambiguous(String, String),
}

/// The largest bookmaker's margin (overround) accepted on a two-way line: moneylines carry
/// 2–10 %; both sides priced as heavy favourites (-10000/-10000, 1.01/1.01) sum to ~1.98.
const MAX_OVERROUND: f64 = 0.25;

/// The longest price accepted, American (+100,000 or -100,000): a 0.1 % chance.
const MAX_AMERICAN: f64 = 100_000.0;
/// The same price as decimal odds.
const MAX_DECIMAL: f64 = 1.0 + MAX_AMERICAN / 100.0;

/// Odds as the decimal payout per unit staked; always above 1 and at most [`MAX_DECIMAL`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecimalOdds(f64);

impl DecimalOdds {
    pub fn from_american(odds: f64) -> Result<Self, OddsError> {
        if !(100.0..=MAX_AMERICAN).contains(&odds.abs()) {
            return Err(OddsError::American(odds.to_string()));
        }
        Ok(Self(if odds > 0.0 {
            1.0 + odds / 100.0
        } else {
            1.0 + 100.0 / -odds
        }))
    }

    pub fn from_decimal(odds: f64) -> Result<Self, OddsError> {
        if odds > 1.0 && odds <= MAX_DECIMAL {
            Ok(Self(odds))
        } else {
            Err(OddsError::Decimal(odds.to_string()))
        }
    }

    pub fn value(self) -> f64 {
        self.0
    }
}

/// A two-way moneyline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarketOdds {
    pub home: DecimalOdds,
    pub away: DecimalOdds,
}

impl MarketOdds {
    /// Parses both prices; without a format, |odds| ≥ 100 on both sides means American and
    /// both between 1 and 100 means decimal.
    pub fn parse(home: f64, away: f64, format: Option<OddsFormat>) -> Result<Self, OddsError> {
        let format = match format {
            Some(format) => format,
            None if home.abs() >= 100.0 && away.abs() >= 100.0 => OddsFormat::American,
            None if (1.0..100.0).contains(&home) && (1.0..100.0).contains(&away) => {
                OddsFormat::Decimal
            }
            None => return Err(OddsError::Ambiguous(home.to_string(), away.to_string())),
        };
        let parse = match format {
            OddsFormat::American => DecimalOdds::from_american,
            OddsFormat::Decimal => DecimalOdds::from_decimal,
        };
        let market = Self {
            home: parse(home)?,
            away: parse(away)?,
        };
        // A negative overround is an arbitrage: no book offers it, so it is a typing error.
        // (Even money both ways, which sums to 1 up to rounding, is a market without margin.)
        let book = 1.0 / market.home.value() + 1.0 / market.away.value();
        if book < 1.0 - 1e-9 {
            return Err(OddsError::BelowEven(home.to_string(), away.to_string()));
        }
        if book > 1.0 + MAX_OVERROUND + 1e-9 {
            return Err(OddsError::TooMuchMargin(
                home.to_string(),
                away.to_string(),
                format!("{book:.3}"),
            ));
        }
        Ok(market)
    }

    /// The market read against the model's P(home win).
    pub fn evaluate(&self, home_win_probability: f64) -> MarketView {
        let implied_home = 1.0 / self.home.value();
        let implied_away = 1.0 / self.away.value();
        let book = implied_home + implied_away;
        MarketView {
            overround: book - 1.0,
            home: SideValue::new(self.home, implied_home, book, home_win_probability),
            away: SideValue::new(self.away, implied_away, book, 1.0 - home_win_probability),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MarketView {
    /// How much the implied probabilities add up to beyond 1 (the bookmaker's margin).
    pub overround: f64,
    pub home: SideValue,
    pub away: SideValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SideValue {
    pub decimal_odds: f64,
    pub implied_probability: f64,
    /// The implied probability with the margin removed proportionally.
    pub market_probability: f64,
    /// Model probability minus market probability.
    pub edge: f64,
    /// Expected profit per unit staked at these odds, by the model.
    pub expected_value: f64,
    /// Full-Kelly share of a bankroll to stake; 0 when the bet has no positive value.
    pub kelly_fraction: f64,
}

impl SideValue {
    fn new(odds: DecimalOdds, implied: f64, book: f64, model: f64) -> Self {
        let payout = odds.value() - 1.0;
        Self {
            decimal_odds: odds.value(),
            implied_probability: implied,
            market_probability: implied / book,
            edge: model - implied / book,
            expected_value: model * odds.value() - 1.0,
            kelly_fraction: ((payout * model - (1.0 - model)) / payout).max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn american_odds_convert_to_decimal() {
        assert!(close(
            DecimalOdds::from_american(-150.0).expect("valid").value(),
            1.0 + 100.0 / 150.0
        ));
        assert!(close(
            DecimalOdds::from_american(130.0).expect("valid").value(),
            2.3
        ));
        assert!(close(
            DecimalOdds::from_american(100.0).expect("valid").value(),
            2.0
        ));
        assert!(DecimalOdds::from_american(-99.0).is_err());
        assert!(DecimalOdds::from_american(f64::NAN).is_err());
        assert!(DecimalOdds::from_decimal(1.0).is_err());
        assert!(DecimalOdds::from_decimal(f64::INFINITY).is_err());
        assert!(DecimalOdds::from_american(-1e308).is_err());
        assert!(DecimalOdds::from_american(100_001.0).is_err());
        assert!(DecimalOdds::from_american(-100_000.0).is_ok());
        assert!(DecimalOdds::from_decimal(1e308).is_err());
        assert!(DecimalOdds::from_decimal(1001.0).is_ok());
        assert!(DecimalOdds::from_decimal(1001.01).is_err());
    }

    #[test]
    fn a_market_below_even_is_refused() {
        // Both sides at +200 imply 1/3 + 1/3: an arbitrage, so a typing error.
        assert!(matches!(
            MarketOdds::parse(200.0, 200.0, None),
            Err(OddsError::BelowEven(..))
        ));
        assert!(matches!(
            MarketOdds::parse(1000.0, 1000.0, Some(OddsFormat::Decimal)),
            Err(OddsError::BelowEven(..))
        ));
        // Both sides heavy favourites: a margin no book takes.
        for (home, away) in [(-10_000.0, -10_000.0), (1.01, 1.01), (-200.0, -200.0)] {
            assert!(
                matches!(
                    MarketOdds::parse(home, away, None),
                    Err(OddsError::TooMuchMargin(..))
                ),
                "{home}/{away}"
            );
        }
        // A wide but real margin (about 9 %) stands.
        MarketOdds::parse(-130.0, -110.0, None).expect("a wide line");
        // Even money both ways is a market without margin: accepted.
        assert!(MarketOdds::parse(100.0, -100.0, None).is_ok());
        assert!(MarketOdds::parse(2.0, 2.0, None).is_ok());
    }

    #[test]
    fn format_is_inferred_or_refused() {
        let american = MarketOdds::parse(-150.0, 130.0, None).expect("American");
        assert!(close(american.away.value(), 2.3));
        let decimal = MarketOdds::parse(1.67, 2.3, None).expect("decimal");
        assert!(close(decimal.home.value(), 1.67));
        assert!(matches!(
            MarketOdds::parse(-150.0, 2.3, None),
            Err(OddsError::Ambiguous(..))
        ));
        assert!(matches!(
            MarketOdds::parse(1.5, 2.5, Some(OddsFormat::American)),
            Err(OddsError::American(_))
        ));
    }

    #[test]
    fn market_view_removes_the_margin_and_prices_the_model() {
        // -150 / +130: implied 0.6 and 0.434783, book 1.034783.
        let view = MarketOdds::parse(-150.0, 130.0, None)
            .expect("odds")
            .evaluate(0.55);
        assert!(close(view.overround, 0.6 + 1.0 / 2.3 - 1.0));
        let fair_home = 0.6 / (0.6 + 1.0 / 2.3);
        assert!(close(view.home.market_probability, fair_home));
        assert!(close(
            view.home.market_probability + view.away.market_probability,
            1.0
        ));
        assert!(close(view.home.edge, 0.55 - fair_home));
        assert!(close(
            view.home.expected_value,
            0.55 * (1.0 + 100.0 / 150.0) - 1.0
        ));
        assert!(
            close(view.home.kelly_fraction, 0.0),
            "negative value: no stake"
        );
        // Away at 2.3 with 0.45: EV 0.035, Kelly (1.3 * 0.45 - 0.55) / 1.3.
        assert!(close(view.away.expected_value, 0.45 * 2.3 - 1.0));
        assert!(close(view.away.kelly_fraction, (1.3 * 0.45 - 0.55) / 1.3));
    }
}
