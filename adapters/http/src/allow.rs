//! The `Allow` header of a 405 answer (RFC 9110 §15.5.6), read off the OpenAPI document so it
//! lists exactly the methods the document declares for that path.

use poem::http::HeaderValue;

/// Each path template of the document (`/sessions/{id}` as `["sessions", "{id}"]`) with its
/// methods, ready to be sent.
pub struct AllowedMethods(Vec<(Vec<String>, HeaderValue)>);

impl AllowedMethods {
    /// Reads the `paths` of an OpenAPI document, plus routes served outside it (`extra`).
    pub fn from_spec(spec: &str, extra: &[(&str, &str)]) -> Self {
        let document: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let mut entries: Vec<(String, Vec<String>)> = document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(path, operations)| {
                let methods = operations
                    .as_object()
                    .into_iter()
                    .flat_map(|ops| ops.keys())
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                (path.clone(), methods)
            })
            .collect();
        entries.extend(
            extra
                .iter()
                .map(|(path, methods)| ((*path).to_owned(), vec![(*methods).to_owned()])),
        );
        Self(
            entries
                .into_iter()
                .filter_map(|(path, mut methods)| {
                    methods.sort();
                    let value = HeaderValue::from_str(&methods.join(", ")).ok()?;
                    Some((segments(&path).map(str::to_owned).collect(), value))
                })
                .collect(),
        )
    }

    /// The methods declared for `path`, if the document has it.
    pub fn for_path(&self, path: &str) -> Option<&HeaderValue> {
        let wanted: Vec<&str> = segments(path).collect();
        self.0
            .iter()
            .find(|(template, _)| {
                template.len() == wanted.len()
                    && template.iter().zip(&wanted).all(|(t, w)| {
                        t == w || (t.starts_with('{') && t.ends_with('}') && !w.is_empty())
                    })
            })
            .map(|(_, value)| value)
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_matches('/').split('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_declared_methods_of_the_matching_template() {
        let spec = r#"{"paths": {
            "/logout": {"post": {}, "delete": {}},
            "/sessions/{id}": {"delete": {}}
        }}"#;
        let allowed = AllowedMethods::from_spec(spec, &[("/openapi.json", "GET")]);
        assert_eq!(allowed.for_path("/logout").unwrap(), "DELETE, POST");
        assert_eq!(allowed.for_path("/sessions/42").unwrap(), "DELETE");
        assert_eq!(allowed.for_path("/openapi.json").unwrap(), "GET");
        assert!(allowed.for_path("/sessions").is_none());
        assert!(allowed.for_path("/sessions/42/x").is_none());
    }
}
