//! Reading a client text frame: one JSON object with an `"op"` the server knows.
//!
//! A frame that is not one is answered with an `error` frame (`bad_frame`) that says what is
//! wrong, carrying the frame's `req` when it could be read, and the connection stays open.

use serde_json::Value;

use crate::protocol::ClientFrame;

/// A client frame, or why it is not one (with its `req` when that could be read).
pub(crate) fn parse(text: &str) -> Result<ClientFrame, (Option<u64>, String)> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| (None, format!("a frame must be one JSON object: {e}")))?;
    let Value::Object(fields) = &value else {
        return Err((
            None,
            "a frame must be one JSON object with an \"op\"".into(),
        ));
    };
    let req = fields.get("req").and_then(Value::as_u64);
    let op = match fields.get("op") {
        None => {
            return Err((
                req,
                "missing \"op\": a client sends \"sync\" or \"call\"".into(),
            ));
        }
        Some(Value::String(op)) => op.clone(),
        Some(_) => return Err((req, "\"op\" must be a string: \"sync\" or \"call\"".into())),
    };
    if op != "sync" && op != "call" {
        return Err((
            req,
            format!("unknown op {op:?}: a client sends \"sync\" or \"call\""),
        ));
    }
    serde_json::from_value(value).map_err(|e| (req, format!("{op}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Call;

    #[test]
    fn parse_reads_calls_and_syncs() {
        let call =
            parse(r#"{"op":"call","req":2,"method":"codes.list","params":{"tenant":"acme"}}"#);
        assert!(matches!(call, Ok(ClientFrame::Call(Call { req: 2, .. }))));
        let sync = parse(
            r#"{"op":"sync","req":1,"streams":[{"stream":"ops","epoch":null,"after":null}]}"#,
        );
        assert!(matches!(sync, Ok(ClientFrame::Sync(_))));
    }

    #[test]
    fn parse_explains_what_is_wrong_and_keeps_the_req() {
        let cases: &[(&str, Option<u64>, &str)] = &[
            ("not json", None, "JSON"),
            ("[1,2]", None, "object"),
            (r#"{"req":3}"#, Some(3), "missing \"op\""),
            (r#"{"op":7,"req":4}"#, Some(4), "string"),
            (r#"{"op":"dance","req":5}"#, Some(5), "unknown op"),
            (r#"{"op":"call","req":6}"#, Some(6), "method"),
            (r#"{"op":"call","req":"7","method":"x"}"#, None, "call"),
            (r#"{"op":"call","req":1e30,"method":"x"}"#, None, "call"),
            (r#"{"op":"sync","req":8,"streams":"ops"}"#, Some(8), "sync"),
        ];
        for (text, req, needle) in cases {
            match parse(text) {
                Err((r, message)) => {
                    assert_eq!(r, *req, "{text}");
                    assert!(message.contains(needle), "{text}: {message}");
                }
                Ok(frame) => panic!("{text} parsed as {frame:?}"),
            }
        }
    }
}
