//! YAML 1.1 plain-scalar typing, as PyYAML (and so confuse) applies it to
//! `ZEBRASTREAM_*` environment values: `"9"` is the integer 9, `"yes"` is
//! true, `""` and `"null"` are null (which unsets the key).
//!
//! Only the types the CLI's keys can use are recognised (null, bool, int,
//! float); every other text stays a string. Sexagesimal numbers (`1:30`) and
//! timestamps are left as strings: no key of ours takes them.

/// A typed configuration value, from a YAML file or an environment variable.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// `~`, `null`, empty: unsets the key for all lower layers.
    Null,
    /// `true`/`yes`/`on` and their negations, in the YAML 1.1 spellings.
    Bool(bool),
    /// An integer (decimal, `0x`, `0b`, or YAML 1.1 leading-zero octal).
    Int(i64),
    /// A float (`1.5`, `.5`, `1.0e3`, `.inf`, `.nan`).
    Float(f64),
    /// Any other text.
    Str(String),
    /// A YAML sequence of values.
    List(Vec<ConfigValue>),
    /// A YAML mapping (no key of ours takes one; kept so errors can name it).
    Mapping,
}

impl ConfigValue {
    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigValue::Null => "null",
            ConfigValue::Bool(_) => "a boolean",
            ConfigValue::Int(_) => "an integer",
            ConfigValue::Float(_) => "a float",
            ConfigValue::Str(_) => "a string",
            ConfigValue::List(_) => "a list",
            ConfigValue::Mapping => "a mapping",
        }
    }
}

/// Types `text` the way PyYAML's implicit resolvers type a plain scalar.
pub fn resolve_plain_scalar(text: &str) -> ConfigValue {
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return ConfigValue::Null;
    }
    if let Some(b) = yaml11_bool(text) {
        return ConfigValue::Bool(b);
    }
    if let Some(i) = yaml11_int(text) {
        return ConfigValue::Int(i);
    }
    if let Some(f) = yaml11_float(text) {
        return ConfigValue::Float(f);
    }
    ConfigValue::Str(text.to_owned())
}

/// The YAML 1.1 boolean spellings (PyYAML's `bool` resolver).
pub fn yaml11_bool(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// Splits an optional leading sign off `text`.
fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

/// Parses digits in `radix`, allowing `_` separators (at least one digit).
fn digits_with_underscores(digits: &str, radix: u32) -> Option<i64> {
    let cleaned: String = digits.chars().filter(|&c| c != '_').collect();
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(&cleaned, radix).ok()
}

/// PyYAML's `int` resolver: `0b1010`, `0x1F`, `017` (octal), `0`, `1_000`.
fn yaml11_int(text: &str) -> Option<i64> {
    let (negative, body) = split_sign(text);
    let magnitude = if let Some(bin) = body.strip_prefix("0b") {
        digits_with_underscores(bin, 2)?
    } else if let Some(hex) = body.strip_prefix("0x") {
        digits_with_underscores(hex, 16)?
    } else if body == "0" {
        0
    } else if let Some(octal) = body.strip_prefix('0') {
        digits_with_underscores(octal, 8)?
    } else if body.starts_with(|c: char| c.is_ascii_digit() && c != '0') {
        digits_with_underscores(body, 10)?
    } else {
        return None;
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// PyYAML's `float` resolver: a dot is required (`1e3` stays a string), plus
/// `.inf`/`.nan` spellings.
fn yaml11_float(text: &str) -> Option<f64> {
    let (negative, body) = split_sign(text);
    let sign = if negative { -1.0 } else { 1.0 };
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return Some(sign * f64::INFINITY);
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.')?;
    let digits_ok = |s: &str| s.chars().all(|c| c.is_ascii_digit() || c == '_');
    // `[0-9][0-9_]*\.[0-9_]*` or `\.[0-9_]+`
    let int_ok = if int_part.is_empty() {
        // The `.5` form takes no sign and needs a digit right after the dot.
        body.len() == text.len() && frac_part.starts_with(|c: char| c.is_ascii_digit())
    } else {
        int_part.starts_with(|c: char| c.is_ascii_digit())
    };
    if !int_ok || !digits_ok(int_part) || !digits_ok(frac_part) {
        return None;
    }
    if let Some(exp) = exponent {
        // PyYAML requires an explicit sign on the exponent.
        let (_, exp_digits) = split_sign(exp);
        if !exp.starts_with(['+', '-'])
            || exp_digits.is_empty()
            || !exp_digits.chars().all(|c| c.is_ascii_digit())
        {
            return None;
        }
    }
    let cleaned: String = body.chars().filter(|&c| c != '_').collect();
    cleaned.parse::<f64>().ok().map(|f| sign * f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_unset() {
        for t in ["", "~", "null", "Null", "NULL"] {
            assert_eq!(resolve_plain_scalar(t), ConfigValue::Null, "{t:?}");
        }
        assert_eq!(
            resolve_plain_scalar("nULL"),
            ConfigValue::Str("nULL".into())
        );
    }

    #[test]
    fn yaml11_booleans() {
        assert_eq!(resolve_plain_scalar("yes"), ConfigValue::Bool(true));
        assert_eq!(resolve_plain_scalar("OFF"), ConfigValue::Bool(false));
        assert_eq!(resolve_plain_scalar("True"), ConfigValue::Bool(true));
        assert_eq!(
            resolve_plain_scalar("tRUE"),
            ConfigValue::Str("tRUE".into())
        );
    }

    #[test]
    fn integers_like_pyyaml() {
        assert_eq!(resolve_plain_scalar("9"), ConfigValue::Int(9));
        assert_eq!(resolve_plain_scalar("-12"), ConfigValue::Int(-12));
        assert_eq!(resolve_plain_scalar("+3"), ConfigValue::Int(3));
        assert_eq!(resolve_plain_scalar("0"), ConfigValue::Int(0));
        assert_eq!(resolve_plain_scalar("1_000"), ConfigValue::Int(1000));
        assert_eq!(resolve_plain_scalar("0x1F"), ConfigValue::Int(31));
        assert_eq!(resolve_plain_scalar("0b101"), ConfigValue::Int(5));
        assert_eq!(resolve_plain_scalar("017"), ConfigValue::Int(15));
        // Not octal: stays a string, as in PyYAML.
        assert_eq!(resolve_plain_scalar("09"), ConfigValue::Str("09".into()));
    }

    #[test]
    fn floats_need_a_dot() {
        assert_eq!(resolve_plain_scalar("1.5"), ConfigValue::Float(1.5));
        assert_eq!(resolve_plain_scalar(".5"), ConfigValue::Float(0.5));
        assert_eq!(resolve_plain_scalar("2."), ConfigValue::Float(2.0));
        assert_eq!(resolve_plain_scalar("-.5"), ConfigValue::Str("-.5".into()));
        assert_eq!(resolve_plain_scalar("1.0e+3"), ConfigValue::Float(1000.0));
        assert_eq!(
            resolve_plain_scalar("-.inf"),
            ConfigValue::Float(f64::NEG_INFINITY)
        );
        assert_eq!(resolve_plain_scalar("1e3"), ConfigValue::Str("1e3".into()));
        assert_eq!(
            resolve_plain_scalar("1.0e3"),
            ConfigValue::Str("1.0e3".into())
        );
        assert_eq!(resolve_plain_scalar("."), ConfigValue::Str(".".into()));
    }

    #[test]
    fn other_text_is_a_string() {
        assert_eq!(
            resolve_plain_scalar("/hospital/trial-42"),
            ConfigValue::Str("/hospital/trial-42".into())
        );
        assert_eq!(
            resolve_plain_scalar("https://connect.zebrastream.io/v0/"),
            ConfigValue::Str("https://connect.zebrastream.io/v0/".into())
        );
    }
}
