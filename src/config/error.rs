//! A setting that cannot be used, named by its environment variable.

use clap::error::{ContextKind, ContextValue};
use clap::Args;

use super::Settings;

/// A setting that could not be used, naming its variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

pub(super) fn bad(variable: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_owned(),
        message: message.into(),
    }
}

impl ConfigError {
    /// The setting a command-line error is about, named by its variable, with
    /// the parser's reason and never clap's rendering (which repeats the
    /// value, a secret perhaps). `None` for help, version and usage errors.
    pub fn from_clap(e: &clap::Error) -> Option<ConfigError> {
        use clap::error::ErrorKind::{InvalidValue, ValueValidation};
        let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
            return None;
        };
        if !matches!(e.kind(), InvalidValue | ValueValidation) {
            return None;
        }
        let long = arg
            .trim_start_matches("--")
            .split(' ')
            .next()
            .unwrap_or_default();
        // The settings alone: their environment variables are all that
        // an error here can name.
        let command = Settings::augment_args(clap::Command::new("settings"));
        let variable = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env())
            .map_or_else(|| arg.clone(), |env| env.to_string_lossy().into_owned());
        let message = match (e.kind(), e.get(ContextKind::ValidValue)) {
            (_, Some(ContextValue::Strings(valid))) => {
                format!("expected one of {}", valid.join(", "))
            }
            _ => {
                std::error::Error::source(e).map_or_else(|| e.kind().to_string(), |s| s.to_string())
            }
        };
        Some(bad(&variable, message))
    }
}
