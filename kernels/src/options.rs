//! The error of parsing an option value (an enum's name) from a string, shared by every option
//! type's `FromStr` in kernels, engine and nst so that front ends can word it their way.

use std::fmt;

/// A string that names none of an option type's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseOptionError {
    /// The option, in the library's words ("precision", "pooling", "device").
    pub option: &'static str,
    /// The string given.
    pub value: String,
    /// The accepted values, as a phrase ("f32 or bf16").
    pub expected: &'static str,
}

impl ParseOptionError {
    /// The error for `value` of `option`.
    pub fn new(option: &'static str, value: &str, expected: &'static str) -> Self {
        ParseOptionError {
            option,
            value: value.to_string(),
            expected,
        }
    }

    /// The message with `name` in place of the option's name (a CLI flag, a JSON field).
    pub fn named(&self, name: &str) -> String {
        format!("{name} {:?}: expected {}", self.value, self.expected)
    }
}

impl fmt::Display for ParseOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.named(self.option))
    }
}

impl std::error::Error for ParseOptionError {}
