//! One source row as an importer reads it: fields looked up by their possible names, each use
//! remembered so that the fields no mapper takes can go to the problem's `metadata`, and each
//! problem recorded as a diagnostic at the row's place.

use serde_json::{Map, Value};
use start_schemas::rows::{json_type_name, Diagnostic, Location};

/// Reads fields from a source row, remembering which were used.
pub(crate) struct Source<'a> {
    row: &'a Map<String, Value>,
    used: Vec<String>,
    location: &'a Location,
    pub(crate) errors: Vec<Diagnostic>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(row: &'a Map<String, Value>, location: &'a Location) -> Self {
        Self {
            row,
            used: Vec::new(),
            location,
            errors: Vec::new(),
        }
    }

    /// The first present, non-null field among `names`.
    pub(crate) fn any(&mut self, names: &[&str]) -> Option<(&'a str, &'a Value)> {
        for name in names {
            if let Some((k, v)) = self.row.get_key_value(*name) {
                if !v.is_null() {
                    self.used.push(k.clone());
                    return Some((k.as_str(), v));
                }
            }
        }
        None
    }

    /// Whether a field is present and not null, without using it (it still goes to metadata).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.row.get(name).is_some_and(|v| !v.is_null())
    }

    /// A field's value without using it.
    pub(crate) fn peek(&self, name: &str) -> Option<&'a Value> {
        self.row.get(name)
    }

    /// Marks fields as used without reading them: bulky columns (model generations, chat
    /// messages) that would otherwise be carried into every trajectory row's metadata.
    pub(crate) fn discard(&mut self, names: &[&str]) {
        self.used.extend(names.iter().map(|n| n.to_string()));
    }

    /// Marks every field not used so far as used: for layouts whose other columns are
    /// annotations nobody should carry into every trajectory row.
    pub(crate) fn discard_rest(&mut self) {
        let rest: Vec<String> = self
            .row
            .keys()
            .filter(|k| !self.used.contains(k))
            .cloned()
            .collect();
        self.used.extend(rest);
    }

    /// A field as text: strings as they are, numbers printed.
    pub(crate) fn text(&mut self, names: &[&str]) -> Option<String> {
        let (name, v) = self.any(names)?;
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.error(
                    name,
                    format!("expected text, got {}", json_type_name(other)),
                );
                None
            }
        }
    }

    /// A field as a number; a numeric string is accepted (CSV exports write numbers as text).
    pub(crate) fn number(&mut self, names: &[&str]) -> Option<f64> {
        let (name, v) = self.any(names)?;
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        if n.is_none() {
            self.error(
                name,
                format!("expected a number, got {}", json_type_name(v)),
            );
        }
        n
    }

    /// A required text field: missing is an error naming every accepted name.
    pub(crate) fn required(&mut self, names: &[&str]) -> Option<String> {
        let found = self.text(names);
        if found.is_none()
            && !self
                .errors
                .iter()
                .any(|d| names.contains(&d.field.as_str()))
        {
            let message = match names {
                [_] => "missing; this layout needs it".to_string(),
                _ => format!("missing; this layout needs one of: {}", names.join(", ")),
            };
            self.error(names[0], message);
        }
        found
    }

    /// Records an error at `field` of this row.
    pub(crate) fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::new(self.location.clone(), field, message));
    }

    /// Every field not used, for `metadata`.
    pub(crate) fn rest(&self) -> Map<String, Value> {
        self.row
            .iter()
            .filter(|(k, v)| !self.used.contains(k) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
