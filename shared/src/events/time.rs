//! Lenient timestamps: AWS events carry ISO-8601 strings, epoch-millisecond numbers and epoch-millisecond strings.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time read from any of the forms AWS events use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LenientTime(pub jiff::Timestamp);

/// Numbers above this are milliseconds, below it seconds (1e11 s is the year 5138).
const MILLIS_THRESHOLD: f64 = 1e11;

impl LenientTime {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(n) = text.parse::<f64>() {
            return Self::from_number(n);
        }
        text.parse::<jiff::Timestamp>()
            .map(LenientTime)
            .map_err(|e| format!("not a timestamp: {text:?} ({e})"))
    }

    fn from_number(n: f64) -> Result<Self, String> {
        if !n.is_finite() || n < 0.0 {
            return Err(format!("not a timestamp: {n}"));
        }
        let millis = if n >= MILLIS_THRESHOLD { n } else { n * 1000.0 };
        jiff::Timestamp::from_millisecond(millis as i64)
            .map(LenientTime)
            .map_err(|e| format!("timestamp out of range: {n} ({e})"))
    }
}

impl<'de> Deserialize<'de> for LenientTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => LenientTime::from_number(n),
            Raw::Text(s) => LenientTime::parse(&s),
        }
        .map_err(serde::de::Error::custom)
    }
}

impl Serialize for LenientTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form_aws_uses() {
        let iso: LenientTime = serde_json::from_str("\"2021-02-24T17:00:14Z\"").unwrap();
        let ms_str: LenientTime = serde_json::from_str("\"1583831889050\"").unwrap();
        let ms_num: LenientTime = serde_json::from_str("1583831889050").unwrap();
        let secs: LenientTime = serde_json::from_str("1583831889.05").unwrap();
        assert_eq!(iso.0.as_second(), 1_614_186_014);
        assert_eq!(ms_str, ms_num);
        assert_eq!(secs.0.as_millisecond(), 1_583_831_889_050);
        assert!(serde_json::from_str::<LenientTime>("\"yesterday\"").is_err());
        assert!(serde_json::from_str::<LenientTime>("-5").is_err());
    }
}
