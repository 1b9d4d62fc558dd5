//! SageMaker's on-demand instance prices, per billed component: Studio apps (idle-shutdown's savings, meter and
//! budgets) and Training (train-on-push's cost guard and the ledger's `training-job` lines). One data file per
//! component and region (`shared/prices/<component>/<region>.toml`, compiled in, each figure citing its source),
//! overridable by configuration. Unknown instance types are reported, never guessed.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, Env};

/// What SageMaker bills at these prices: each component has its own rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// Studio apps (JupyterLab, Code Editor, Studio notebooks).
    Studio,
    /// Training jobs, per instance.
    Training,
}

impl Component {
    fn folder(self) -> &'static str {
        match self {
            Component::Studio => "studio",
            Component::Training => "training",
        }
    }
}

/// The price files compiled into the binaries, by component and region.
const EMBEDDED: &[(Component, &str, &str)] = &[
    (
        Component::Studio,
        "us-east-1",
        include_str!("../prices/studio/us-east-1.toml"),
    ),
    (
        Component::Studio,
        "eu-west-1",
        include_str!("../prices/studio/eu-west-1.toml"),
    ),
    (
        Component::Training,
        "us-east-1",
        include_str!("../prices/training/us-east-1.toml"),
    ),
    (
        Component::Training,
        "eu-west-1",
        include_str!("../prices/training/eu-west-1.toml"),
    ),
];

/// Where a price came from, for the report.
pub const OVERRIDE_SOURCE: &str = "configuration";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PriceFileError {
    #[error("price file {file}: {reason}")]
    Invalid { file: String, reason: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    region: String,
    currency: String,
    /// Read by the tests, which check each file sits under its component.
    #[cfg_attr(not(test), allow(dead_code))]
    component: String,
    #[allow(dead_code)]
    reviewed: String,
    sources: BTreeMap<String, Source>,
    prices: BTreeMap<String, Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    #[allow(dead_code)]
    description: String,
    #[allow(dead_code)]
    published: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    usd_per_hour: f64,
    source: String,
}

/// One known price and its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub usd_per_hour: f64,
    pub source: String,
}

/// Hourly prices of one region, with configuration overrides applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    region: String,
    prices: BTreeMap<String, Price>,
}

/// A valid price: finite, positive, and below a sanity bound that no single instance reaches (the largest training
/// instances cost under 100 USD an hour).
pub fn valid_price(usd_per_hour: f64) -> bool {
    usd_per_hour.is_finite() && usd_per_hour > 0.0 && usd_per_hour < 1000.0
}

fn parse_file(name: &str, text: &str) -> Result<PriceFile, PriceFileError> {
    let invalid = |reason: String| PriceFileError::Invalid {
        file: name.to_string(),
        reason,
    };
    let file: PriceFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if file.currency != "USD" {
        return Err(invalid(format!(
            "currency must be USD, found {:?}",
            file.currency
        )));
    }
    for (instance_type, entry) in &file.prices {
        if !valid_price(entry.usd_per_hour) {
            return Err(invalid(format!(
                "{instance_type}: usd_per_hour {} is not a plausible price",
                entry.usd_per_hour
            )));
        }
        if !file.sources.contains_key(&entry.source) {
            return Err(invalid(format!(
                "{instance_type}: source {:?} is not listed under [sources]",
                entry.source
            )));
        }
    }
    Ok(file)
}

impl PriceTable {
    /// The compiled-in table of `component` in `region` (empty when no file exists for it) with `overrides`
    /// applied on top.
    pub fn for_region(
        component: Component,
        region: &str,
        overrides: &BTreeMap<String, f64>,
    ) -> Result<Self, PriceFileError> {
        let mut prices = BTreeMap::new();
        let embedded = EMBEDDED
            .iter()
            .find(|(c, r, _)| *c == component && *r == region);
        if let Some((c, name, text)) = embedded {
            let path = format!("prices/{}/{name}.toml", c.folder());
            let file = parse_file(&path, text)?;
            if file.region != region {
                return Err(PriceFileError::Invalid {
                    file: path,
                    reason: format!("declares region {:?}", file.region),
                });
            }
            for (instance_type, entry) in file.prices {
                prices.insert(
                    instance_type.to_ascii_lowercase(),
                    Price {
                        usd_per_hour: entry.usd_per_hour,
                        source: entry.source,
                    },
                );
            }
        } else {
            tracing::warn!(
                region,
                component = component.folder(),
                "no price file for this region; only configured prices are known"
            );
        }
        for (instance_type, usd_per_hour) in overrides {
            prices.insert(
                instance_type.to_ascii_lowercase(),
                Price {
                    usd_per_hour: *usd_per_hour,
                    source: OVERRIDE_SOURCE.to_string(),
                },
            );
        }
        Ok(Self {
            region: region.to_string(),
            prices,
        })
    }

    /// A table from explicit prices (tests, demos).
    pub fn from_prices(region: &str, prices: &[(&str, f64)]) -> Self {
        Self {
            region: region.to_string(),
            prices: prices
                .iter()
                .map(|(t, p)| {
                    (
                        t.to_ascii_lowercase(),
                        Price {
                            usd_per_hour: *p,
                            source: OVERRIDE_SOURCE.to_string(),
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The hourly price of an instance type, if known.
    pub fn hourly(&self, instance_type: &str) -> Option<f64> {
        self.prices
            .get(&instance_type.to_ascii_lowercase())
            .map(|p| p.usd_per_hour)
    }

    pub fn price(&self, instance_type: &str) -> Option<&Price> {
        self.prices.get(&instance_type.to_ascii_lowercase())
    }

    pub fn len(&self) -> usize {
        self.prices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

/// A JSON object of instance type → USD per hour from `var` (empty when unset): the prices an operator adds or
/// corrects without a release. Every price must pass [`valid_price`].
pub fn overrides_from_env(
    env: &Env<'_>,
    var: &'static str,
) -> Result<BTreeMap<String, f64>, ConfigError> {
    let overrides: BTreeMap<String, f64> = env.json_or(
        var,
        "a JSON object of instance type to USD per hour, e.g. {\"ml.g6.xlarge\": 0.98}",
        BTreeMap::new(),
    )?;
    match overrides.iter().find(|(_, p)| !valid_price(**p)) {
        Some((t, p)) => Err(ConfigError::Malformed {
            var: var.to_string(),
            expected: "prices above 0 and below 1000 USD per hour".to_string(),
            found: format!("{t}: {p}"),
        }),
        None => Ok(overrides),
    }
}

/// Rounds a dollar figure to cents' hundredths for reports (avoids `0.30000000000000004`).
pub fn round_usd(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_is_valid_and_cites_its_sources() {
        for (component, region, text) in EMBEDDED {
            let file = parse_file(region, text).unwrap();
            assert_eq!(&file.region, region);
            assert!(!file.prices.is_empty());
            assert!(text.contains("FACTS.md"), "{region} must cite FACTS.md");
            let training = file.component.contains("Training");
            assert_eq!(
                training,
                *component == Component::Training,
                "{region}: {}",
                file.component
            );
        }
    }

    #[test]
    fn us_east_1_carries_the_dated_bulk_file_figures() {
        let t = PriceTable::for_region(Component::Studio, "us-east-1", &BTreeMap::new()).unwrap();
        assert_eq!(t.hourly("ml.t3.medium"), Some(0.05));
        assert_eq!(t.hourly("ml.g4dn.xlarge"), Some(0.7364));
        assert_eq!(t.hourly("ML.G5.XLARGE"), Some(1.41));
        assert_eq!(t.price("ml.g5.xlarge").unwrap().source, "P1");
        // Conflicting or wrong-region figures are left out, not guessed.
        assert_eq!(t.hourly("ml.g4dn.2xlarge"), None);
        assert_eq!(t.hourly("ml.t3.large"), None);
    }

    #[test]
    fn training_is_priced_apart_from_studio() {
        let none = BTreeMap::new();
        let train = PriceTable::for_region(Component::Training, "us-east-1", &none).unwrap();
        let studio = PriceTable::for_region(Component::Studio, "us-east-1", &none).unwrap();
        assert_eq!(train.hourly("ml.g5.xlarge"), Some(1.408));
        assert_eq!(studio.hourly("ml.g5.xlarge"), Some(1.41));
        // A Studio-only type is not a training price.
        assert_eq!(train.hourly("ml.t3.medium"), None);
        let ireland = PriceTable::for_region(Component::Training, "eu-west-1", &none).unwrap();
        assert_eq!(ireland.hourly("ml.p3.2xlarge"), Some(4.131));
    }

    #[test]
    fn overrides_replace_and_extend() {
        let overrides = BTreeMap::from([
            ("ml.g5.xlarge".to_string(), 1.5),
            ("ml.g6.xlarge".to_string(), 0.98),
        ]);
        let t = PriceTable::for_region(Component::Studio, "us-east-1", &overrides).unwrap();
        assert_eq!(t.hourly("ml.g5.xlarge"), Some(1.5));
        assert_eq!(t.price("ml.g6.xlarge").unwrap().source, OVERRIDE_SOURCE);
        assert_eq!(t.hourly("ml.t3.medium"), Some(0.05));
    }

    #[test]
    fn unknown_region_has_only_overrides() {
        let overrides = BTreeMap::from([("ml.t3.medium".to_string(), 0.06)]);
        let t = PriceTable::for_region(Component::Training, "eu-central-1", &overrides).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.hourly("ml.t3.medium"), Some(0.06));
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let bad_price = r#"
            region = "x"
            currency = "USD"
            component = "c"
            reviewed = "d"
            [sources.A]
            description = "d"
            published = "p"
            [prices]
            "ml.t3.medium" = { usd_per_hour = -1.0, source = "A" }
        "#;
        let err = parse_file("x.toml", bad_price).unwrap_err().to_string();
        assert!(
            err.contains("ml.t3.medium") && err.contains("plausible"),
            "{err}"
        );
        let unknown_source = bad_price.replace("-1.0, source = \"A\"", "1.0, source = \"B\"");
        let err = parse_file("x.toml", &unknown_source)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not listed under [sources]"), "{err}");
        let typo = bad_price.replace("usd_per_hour = -1.0", "usd_per_hr = 1.0");
        assert!(parse_file("x.toml", &typo).is_err());
    }

    #[test]
    fn rounding_for_reports() {
        assert_eq!(round_usd(0.1 + 0.2), 0.3);
        assert_eq!(round_usd(0.7364 + 1.41), 2.1464);
    }
}
