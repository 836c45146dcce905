//! The JSON printer: one object per command, on one line (JSON Lines).
//! `{"command": "<the line as typed>", "kind": "<Output variant>", ...fields}`;
//! the fields of each kind are those of [`super::output`].

use serde_json::{Map, Value};

use super::output::Output;

/// The output as a JSON value (an object with `"kind"`).
pub fn to_value(o: &Output) -> Value {
    serde_json::to_value(o).unwrap_or_else(|e| {
        // Serialising plain data cannot fail; say so if it ever does.
        serde_json::json!({"kind": "error", "message": format!("cannot serialise the output: {e}")})
    })
}

/// One line of batch JSON output: the command as typed, then the output's fields.
pub fn render(command: &str, o: &Output) -> String {
    let mut obj = Map::new();
    obj.insert("command".into(), Value::String(command.to_string()));
    if let Value::Object(fields) = to_value(o) {
        obj.extend(fields);
    }
    Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::output::{Place, Reason, Stopped};

    #[test]
    fn a_stop_has_kind_reason_and_place() {
        let o = Output::Stopped(Stopped {
            reason: Reason::Exited {
                r0: 2,
                name: Some("XDP_PASS".into()),
            },
            place: Place {
                step: 3,
                program: 0,
                program_name: "p".into(),
                insn: 2,
                function: None,
                file: None,
                line: None,
                source: None,
                text: "exit".into(),
                ended: true,
            },
        });
        let v: Value = serde_json::from_str(&render("c", &o)).unwrap();
        assert_eq!(v["command"], "c");
        assert_eq!(v["kind"], "stopped");
        assert_eq!(v["reason"], "exited");
        assert_eq!(v["r0"], 2);
        assert_eq!(v["name"], "XDP_PASS");
        assert_eq!(v["place"]["insn"], 2);
        assert_eq!(v["place"]["ended"], true);
    }
}
