//! The Go regression test: a new `selfheal_<id>_test.go` in the culprit's package (same
//! package clause, so unexported functions are callable) with one `TestSelfheal…` function
//! that calls the culprit function with the failing input and checks what the fix does.
//!
//! Arguments, per parameter (a heuristic, documented because it can be wrong):
//! 1. what the template decided: the pointer it guards is `nil`, the divisor it guards is `0`;
//! 2. the failing request's input from the telemetry, matched by name (an input whose key's
//!    last segment equals the parameter name, ignoring case and `_`), for strings, numbers
//!    and booleans, re-printed as Go literals (untrusted text never reaches the code as is);
//! 3. the type's zero value, which is the input a bare trace most often crashed on (an empty
//!    string splits into one part, a nil slice has no element, a zero divisor, a nil pointer).
//!
//! A method is called on a zero receiver (`var recv T`; `var recv *T` when the template
//! guards the receiver). A handler gets an `httptest` request whose JSON body is the
//! telemetry input. Assertions follow the fix: an error (`errors.Is` the sentinel when the fix
//! wraps one), HTTP 400, or only that the call returns. Before the fix the panic ends the test
//! binary with the incident's panic message: that is the failure the sandbox looks for.

use std::collections::{BTreeSet, HashMap};

use selfheal_events::RegressionTest;

use super::syntax::{
    GoFunc, Param, enclosing_func, imports, is_identifier, is_selector_chain, mask, package_name, string_literal,
    zero_value,
};
use super::templates::{NIL_GUARD, ZERO_DIVISION, panic_message};
use crate::languages::{Expectation, RegressionError, RegressionRequest, id_token, refuse, safe_chars};

/// Writes the test (see the module docs).
pub fn write(request: &RegressionRequest<'_>) -> Result<RegressionTest, RegressionError> {
    let site = request.site;
    let rc = site.root_cause;
    let masked = mask(site.source);
    let index = usize::try_from(rc.line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .ok_or_else(|| refuse("the culprit line is not a line number"))?;
    let func =
        enclosing_func(&masked, index).ok_or_else(|| refuse("the culprit line is not inside a top-level function"))?;
    if func.generic {
        return Err(refuse(format!(
            "`{}` has type parameters: no arguments can be chosen",
            func.name
        )));
    }
    let package = package_name(&masked).ok_or_else(|| refuse("the culprit file has no package clause"))?;
    let dir = match rc.file.rsplit_once('/') {
        Some((dir, _)) => dir.to_string(),
        None => String::new(),
    };
    if !dir
        .split('/')
        .all(|s| s.is_empty() || s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)))
    {
        return Err(refuse(format!("`{}` is not in a plain relative directory", rc.file)));
    }
    let token = id_token(&site.diag.incident_id, request.long_name);
    let file = if dir.is_empty() {
        format!("selfheal_{}_test.go", token.to_ascii_lowercase())
    } else {
        format!("{dir}/selfheal_{}_test.go", token.to_ascii_lowercase())
    };
    let name = format!("TestSelfheal_{token}_{}", func.name);
    let fix_params = request.fix.map(|f| &f.params);
    let template = request.template.unwrap_or_default();
    let guarded_pointer = (template == NIL_GUARD)
        .then(|| fix_params.and_then(|p| p.get("pointer")).cloned())
        .flatten();
    let divisor = (template == ZERO_DIVISION)
        .then(|| fix_params.and_then(|p| p.get("divisor")).cloned())
        .flatten();
    let sample: HashMap<String, String> = site.diag.sample_inputs.first().cloned().unwrap_or_default();
    let file_imports = imports(site.source);
    let mut needed: BTreeSet<String> = BTreeSet::from(["testing".to_string()]);

    let mut body: Vec<String> = Vec::new();
    let expect = request.fix.map_or(Expectation::Completes, |f| f.expect.clone());
    let call = if func.http_handler().is_some() {
        needed.extend(["net/http/httptest".to_string(), "strings".to_string()]);
        body.push("rec := httptest.NewRecorder()".into());
        body.push(format!(
            "req := httptest.NewRequest(\"POST\", \"/\", strings.NewReader({}))",
            string_literal(&json_body(&sample))
        ));
        format!(
            "{}(rec, req)",
            callee(&func, guarded_pointer.as_deref(), &mut body, &file_imports, &mut needed)?
        )
    } else {
        let mut args = Vec::new();
        for p in &func.params {
            if p.ty.starts_with("...") {
                continue;
            }
            args.push(argument(
                p,
                guarded_pointer.as_deref(),
                divisor.as_deref(),
                &sample,
                &file_imports,
                &mut needed,
            )?);
        }
        format!(
            "{}({})",
            callee(&func, guarded_pointer.as_deref(), &mut body, &file_imports, &mut needed)?,
            args.join(", ")
        )
    };
    let shown = safe_text(&call);
    match (&expect, func.http_handler().is_some()) {
        (Expectation::HttpStatus(code), true) => {
            body.push(call);
            body.push(format!(
                "if rec.Code != {code} {{\n\t\tt.Fatalf(\"{shown}: status %d, want {code}\", rec.Code)\n\t}}"
            ));
        }
        (_, true) => body.push(call),
        (Expectation::Raises(sentinel), false) if func.returns_error() => {
            let blanks = vec!["_"; func.results.len() - 1];
            let lhs = if blanks.is_empty() {
                "err".to_string()
            } else {
                format!("{}, err", blanks.join(", "))
            };
            body.push(format!("{lhs} := {call}"));
            match sentinel_reference(sentinel, &file_imports) {
                Some((reference, import)) => {
                    needed.insert("errors".into());
                    needed.extend(import);
                    body.push(format!(
                        "if !errors.Is(err, {reference}) {{\n\t\tt.Fatalf(\"{shown}: err = %v, want {}\", err)\n\t}}",
                        safe_text(&reference)
                    ));
                }
                None => body.push(format!(
                    "if err == nil {{\n\t\tt.Fatalf(\"{shown}: want an error, got nil\")\n\t}}"
                )),
            }
        }
        _ => {
            if func.results.is_empty() {
                body.push(call);
            } else {
                let blanks = vec!["_"; func.results.len()];
                body.push(format!("{} = {call}", blanks.join(", ")));
            }
        }
    }

    let incident = safe_chars(&site.diag.incident_id);
    let crash = safe_text(&panic_message(site.diag));
    let mut code = String::new();
    code.push_str(&format!(
        "// Regression test written by selfheal for incident {incident}:\n// {} panicked with \"{crash}\".\n\npackage {package}\n\n",
        func.name
    ));
    code.push_str("import (\n");
    for import in &needed {
        code.push_str(&format!("\t\"{import}\"\n"));
    }
    code.push_str(")\n\n");
    code.push_str(&format!("func {name}(t *testing.T) {{\n"));
    for line in &body {
        code.push_str(&format!("\t{line}\n"));
    }
    code.push_str("}\n");
    Ok(RegressionTest { file, name, code })
}

/// The function or method expression to call; a method gets a zero receiver declared in `body`.
fn callee(
    func: &GoFunc,
    guarded: Option<&str>,
    body: &mut Vec<String>,
    file_imports: &[String],
    needed: &mut BTreeSet<String>,
) -> Result<String, RegressionError> {
    let Some(receiver) = &func.receiver else {
        return Ok(func.name.clone());
    };
    let base = receiver.ty.trim_start_matches('*');
    if !is_selector_chain(base) {
        return Err(refuse(format!("cannot make a receiver of type `{}`", receiver.ty)));
    }
    qualify(base, file_imports, needed);
    let ty = if guarded.is_some() && guarded == Some(receiver.name.as_str()) && receiver.ty.starts_with('*') {
        format!("*{base}")
    } else {
        base.to_string()
    };
    body.push(format!("var recv {ty}"));
    Ok(format!("recv.{}", func.name))
}

/// Adds the import a qualified type name needs (`pkg.T` → the file's import ending in `pkg`).
fn qualify(ty: &str, file_imports: &[String], needed: &mut BTreeSet<String>) {
    for word in ty.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')) {
        if let Some((pkg, _)) = word.split_once('.')
            && let Some(path) = file_imports.iter().find(|p| p.rsplit('/').next() == Some(pkg))
        {
            needed.insert(path.clone());
        }
    }
}

/// One argument (see the module docs).
fn argument(
    p: &Param,
    guarded: Option<&str>,
    divisor: Option<&str>,
    sample: &HashMap<String, String>,
    file_imports: &[String],
    needed: &mut BTreeSet<String>,
) -> Result<String, RegressionError> {
    if guarded == Some(p.name.as_str()) {
        return Ok("nil".into());
    }
    if let Some(d) = divisor
        && (d == p.name || d.ends_with(&format!("({})", p.name)))
        && super::syntax::is_numeric(&p.ty)
    {
        return Ok("0".into());
    }
    if let Some(value) = from_sample(p, sample) {
        return Ok(value);
    }
    let zero = zero_value(&p.ty)
        .ok_or_else(|| refuse(format!("no zero value for parameter `{}` of type `{}`", p.name, p.ty)))?;
    if zero.ends_with("{}") {
        qualify(&p.ty, file_imports, needed);
    }
    Ok(zero)
}

fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// A literal for `p` from the telemetry input whose key's last segment names it.
fn from_sample(p: &Param, sample: &HashMap<String, String>) -> Option<String> {
    if !is_identifier(&p.name) {
        return None;
    }
    let mut keys: Vec<&String> = sample.keys().collect();
    keys.sort();
    let key = keys
        .into_iter()
        .find(|k| norm(k.rsplit('.').next().unwrap_or(k)) == norm(&p.name))?;
    let value = sample.get(key)?;
    literal(&p.ty, value)
}

/// `value` as a Go literal of type `ty`, when it parses as one.
pub fn literal(ty: &str, value: &str) -> Option<String> {
    match ty {
        "string" => Some(string_literal(value)),
        "bool" => match value.trim() {
            "true" | "True" => Some("true".into()),
            "false" | "False" => Some("false".into()),
            _ => None,
        },
        "int" | "int8" | "int16" | "int32" | "int64" => value.trim().parse::<i64>().ok().map(|n| n.to_string()),
        "uint" | "uint8" | "uint16" | "uint32" | "uint64" | "byte" => {
            value.trim().parse::<u64>().ok().map(|n| n.to_string())
        }
        "float32" | "float64" => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| format!("{f:?}")),
        _ => None,
    }
}

/// The telemetry input as a JSON object, keyed by the last segment of each key.
fn json_body(sample: &HashMap<String, String>) -> String {
    let mut map = serde_json::Map::new();
    let mut keys: Vec<&String> = sample.keys().collect();
    keys.sort();
    for k in keys {
        let short = k.rsplit('.').next().unwrap_or(k).to_string();
        let v = &sample[k];
        let value = match v.parse::<f64>() {
            Ok(n) if n.is_finite() => serde_json::json!(n),
            _ => serde_json::Value::String(v.clone()),
        };
        map.insert(short, value);
    }
    serde_json::Value::Object(map).to_string()
}

/// The sentinel as the test refers to it, and the import it needs.
fn sentinel_reference(sentinel: &str, file_imports: &[String]) -> Option<(String, Option<String>)> {
    // `error`: the fix returns a plain error, there is no sentinel to compare with.
    if sentinel == "error" {
        return None;
    }
    if is_identifier(sentinel) {
        return Some((sentinel.to_string(), None));
    }
    let (pkg, name) = sentinel.split_once('.')?;
    if !is_identifier(name) {
        return None;
    }
    let path = file_imports.iter().find(|p| p.rsplit('/').next() == Some(pkg))?;
    Some((sentinel.to_string(), Some(path.clone())))
}

/// Text safe inside a Go string literal and a `//` comment: no quotes, backslashes, `%` or
/// control characters.
fn safe_text(text: &str) -> String {
    text.chars()
        .map(|c| if c == '"' || c == '`' { '\'' } else { c })
        .filter(|c| (c.is_ascii_graphic() || *c == ' ') && *c != '\\' && *c != '%')
        .take(160)
        .collect()
}
