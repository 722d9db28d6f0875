//! Splitting a command string into words the way Python's `shlex.split`
//! does (POSIX mode, no comments): the Python CLI reads the config key
//! `command` like this, so the same config runs the same program here.

use std::fmt;

/// Why a command string could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// A `'` or `"` quote was opened and never closed.
    UnclosedQuote,
    /// The string ends with a lone backslash.
    TrailingBackslash,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::UnclosedQuote => f.write_str("no closing quotation"),
            SplitError::TrailingBackslash => f.write_str("no escaped character after '\\'"),
        }
    }
}

/// Splits `line` into words: whitespace separates words, `'…'` keeps text
/// literally, `"…"` keeps text but lets `\` escape `"` and `\`, and a `\`
/// outside quotes escapes any character. `""` yields an empty word.
pub fn split(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    // True once the current word has started (quotes can start an empty word).
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                word.push(chars.next().ok_or(SplitError::TrailingBackslash)?);
                in_word = true;
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(q) => word.push(q),
                        None => return Err(SplitError::UnclosedQuote),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            // Only `"` and `\` are escapable inside double quotes.
                            Some(e @ ('"' | '\\')) => word.push(e),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err(SplitError::UnclosedQuote),
                        },
                        Some(q) => word.push(q),
                        None => return Err(SplitError::UnclosedQuote),
                    }
                }
            }
            other => {
                word.push(other);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(line: &str) -> Vec<String> {
        split(line).unwrap()
    }

    #[test]
    fn plain_words() {
        assert_eq!(s("  tail -f  app.log "), ["tail", "-f", "app.log"]);
        assert!(s("   ").is_empty());
    }

    #[test]
    fn quotes_and_escapes_like_shlex() {
        assert_eq!(
            s(r#"sh -c "cat file.txt | gzip""#),
            ["sh", "-c", "cat file.txt | gzip"]
        );
        assert_eq!(s(r"echo 'a \b' x\ y"), ["echo", r"a \b", "x y"]);
        assert_eq!(s(r#"echo "a \"q\" \n \\""#), ["echo", r#"a "q" \n \"#]);
        assert_eq!(s(r#"a "" b''c"#), ["a", "", "bc"]);
        assert_eq!(s("a#b # c"), ["a#b", "#", "c"]);
    }

    #[test]
    fn errors() {
        assert_eq!(split("echo 'oops"), Err(SplitError::UnclosedQuote));
        assert_eq!(split("echo \"oops"), Err(SplitError::UnclosedQuote));
        assert_eq!(split("echo oops\\"), Err(SplitError::TrailingBackslash));
    }
}
