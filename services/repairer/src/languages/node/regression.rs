//! The Node.js regression test: a new `selfheal-<id>.test.js` (`.mjs` for an ES module in a
//! CommonJS package) in the project's test directory, for the framework `package.json` names
//! (node:test, Jest or Vitest), that imports the culprit function from its module and calls
//! it with the failing input.
//!
//! Arguments, per parameter (a heuristic, documented because it can be wrong):
//! 1. the failing request's input from the telemetry: inputs whose key starts with
//!    `<param>.` become an object (`order.country = XX` → `{ country: 'XX' }`, nested keys
//!    nest), an input whose key's last segment is the parameter's name is the value itself;
//!    numbers and booleans are typed, everything is re-printed as a JSON literal (untrusted
//!    text never reaches the code as is);
//! 2. what the crash class needs: `undefined` for the object the template guards when it is
//!    the parameter itself, a string that is not JSON for the argument of `JSON.parse`,
//!    `-1`/`101`/an invalid date for the argument a RangeError template guards;
//! 3. else `{}` (a missing field is what a bare trace most often crashed on).
//!
//! Assertions follow the fix and are framework-neutral (a thrown `Error` with the caught
//! error's stack in its message, so a failure before the fix shows the incident's class):
//! the domain error class is thrown, an HTTP handler answers 400 (with request and response
//! stand-ins), or the call completes.

use std::collections::HashMap;

use selfheal_events::RegressionTest;

use super::syntax::{Export, enclosing_function, export_of, is_identifier, mask, string_literal};
use super::templates::{CALLABLE_GUARD, JSON_PARSE, PROPERTY_GUARD, RANGE_GUARD, error_message};
use crate::languages::{Expectation, RegressionError, RegressionRequest, id_token, refuse, safe_chars};

/// Whether the culprit module is an ES module.
fn is_esm(file: &str, masked: &str, package_type_module: bool) -> bool {
    if file.ends_with(".mjs") || file.ends_with(".mts") {
        return true;
    }
    if file.ends_with(".cjs") || file.ends_with(".cts") {
        return false;
    }
    package_type_module
        || masked
            .lines()
            .any(|l| l.starts_with("export ") || l.starts_with("import ") && l.contains(" from "))
}

/// Writes the test (see the module docs). `package_type_module`: `"type": "module"` in package.json.
pub fn write(request: &RegressionRequest<'_>, package_type_module: bool) -> Result<RegressionTest, RegressionError> {
    let site = request.site;
    let rc = site.root_cause;
    let project = request.project;
    if rc.file.ends_with(".ts") || rc.file.ends_with(".tsx") || rc.file.ends_with(".mts") || rc.file.ends_with(".cts") {
        return Err(refuse("TypeScript sources need the project's compiler: not written"));
    }
    let masked = mask(site.source);
    let index = usize::try_from(rc.line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .ok_or_else(|| refuse("the culprit line is not a line number"))?;
    let func = enclosing_function(&masked, index).ok_or_else(|| refuse("the culprit line is not inside a function"))?;
    let params = func
        .params
        .clone()
        .ok_or_else(|| refuse(format!("`{}` has destructured or rest parameters", func.name)))?;
    let export = export_of(&masked, &func.name).ok_or_else(|| {
        refuse(format!(
            "`{}` is not exported from {}: a test cannot call it",
            func.name, rc.file
        ))
    })?;
    let esm = is_esm(&rc.file, &masked, package_type_module);
    let token = id_token(&site.diag.incident_id, request.long_name);
    let test_root = project.test_root.trim_end_matches('/');
    let ext = if esm && !package_type_module { "mjs" } else { "js" };
    let file = if test_root.is_empty() || test_root == "." {
        format!("selfheal-{token}.test.{ext}")
    } else {
        format!("{test_root}/selfheal-{token}.test.{ext}")
    };
    let import_path = relative_import(&file, &rc.file)?;
    let fix_params = request.fix.map(|f| f.params.clone()).unwrap_or_default();
    let template = request.template.unwrap_or_default();
    let sample: HashMap<String, String> = site.diag.sample_inputs.first().cloned().unwrap_or_default();

    // Which parameter the template's guard is about, and what value reproduces the crash.
    let guarded = |key: &str| {
        fix_params
            .get(key)
            .map(|v| v.split(['.', '[']).next().unwrap_or(v).to_string())
    };
    let crash_value = |param: &str| -> Option<String> {
        match template {
            PROPERTY_GUARD
                if guarded("object").as_deref() == Some(param)
                    && fix_params.get("object").map(String::as_str) == Some(param) =>
            {
                Some("undefined".into())
            }
            CALLABLE_GUARD if guarded("callee").as_deref() == Some(param) => Some("undefined".into()),
            JSON_PARSE if site.source.contains(&format!("JSON.parse({param})")) => Some(string_literal("{")),
            RANGE_GUARD if fix_params.get("argument").map(String::as_str) == Some(param) => {
                let message = error_message(site.diag);
                let value = if message.starts_with("toFixed()") || message.starts_with("toPrecision()") {
                    "101"
                } else if message.starts_with("Invalid time value") {
                    "'not a date'"
                } else {
                    "-1"
                };
                Some(value.to_string())
            }
            _ => None,
        }
    };

    let mut arrange: Vec<String> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let handler = matches!(request.fix.map(|f| &f.expect), Some(Expectation::HttpStatus(_)));
    if handler {
        let body = object_for(&sample, None).unwrap_or_else(|| "{}".into());
        arrange.push(format!(
            "const req = {{ method: 'POST', url: '/', headers: {{}}, query: {{}}, params: {{}}, body: {body} }};"
        ));
        arrange.push("const res = { statusCode: 200, headers: {}, body: undefined, status(code) { this.statusCode = code; return this; }, json(value) { this.body = value; return this; }, send(value) { this.body = value; return this; }, setHeader(k, v) { this.headers[k] = v; }, writeHead(code, headers) { this.statusCode = code; Object.assign(this.headers, headers || {}); return this; }, end(value) { this.body = value; } };".into());
        args.extend(params.iter().enumerate().map(|(i, _)| match i {
            0 => "req".to_string(),
            1 => "res".to_string(),
            _ => "undefined".to_string(),
        }));
    } else {
        for p in &params {
            let value = crash_value(p)
                .or_else(|| object_for(&sample, Some(p)))
                .or_else(|| scalar_for(&sample, p))
                .unwrap_or_else(|| "{}".into());
            arrange.push(format!("const {p} = {value};"));
            args.push(p.clone());
        }
    }
    let call = format!("{}({})", func.name, args.join(", "));
    let shown = safe_chars(&func.name);
    let mut assert: Vec<String> = Vec::new();
    match request.fix.map(|f| &f.expect) {
        Some(Expectation::Raises(class)) if is_identifier(class) => {
            assert.push("let error;".into());
            assert.push(format!(
                "try {{\n    await {call};\n  }} catch (err) {{\n    error = err;\n  }}"
            ));
            assert.push(format!(
                "if (error?.constructor?.name !== '{class}' && error?.name !== '{class}') {{\n    throw new Error(`{shown} should throw {class}, got: ${{error && error.stack ? error.stack : error}}`);\n  }}"
            ));
        }
        Some(Expectation::HttpStatus(code)) => {
            assert.push(format!("await {call};"));
            assert.push(format!(
                "if (res.statusCode !== {code}) {{\n    throw new Error(`{shown} should answer {code}, answered ${{res.statusCode}}`);\n  }}"
            ));
        }
        Some(Expectation::Returns(value)) => {
            assert.push(format!("const result = await {call};"));
            assert.push(format!(
                "if (JSON.stringify(result) !== JSON.stringify({value})) {{\n    throw new Error(`{shown} returned ${{JSON.stringify(result)}}`);\n  }}"
            ));
        }
        _ => assert.push(format!("await {call};")),
    }

    let incident = safe_chars(&site.diag.incident_id);
    let crash: String = error_message(site.diag)
        .chars()
        .filter(|c| (c.is_ascii_graphic() || *c == ' ') && *c != '\\' && *c != '`' && *c != '*')
        .take(160)
        .collect();
    let name = format!("selfheal {token}: {shown} handles the input that crashed it");
    // Vitest transforms every test file and refuses `require('vitest')`: its tests are written
    // as ES modules whatever the culprit module is (Vitest imports CommonJS from them).
    let esm_test = esm || project.framework == "vitest";
    let mut code = String::new();
    if !esm_test {
        code.push_str("'use strict';\n");
    }
    code.push_str(&format!(
        "// Regression test written by selfheal for incident {incident}:\n// {shown} threw \"{crash}\".\n"
    ));
    let import = match (esm_test, export) {
        (true, Export::Named) => format!("import {{ {} }} from {};", func.name, string_literal(&import_path)),
        (true, Export::Default) => format!("import {} from {};", func.name, string_literal(&import_path)),
        (false, Export::Named) => format!("const {{ {} }} = require({});", func.name, string_literal(&import_path)),
        (false, Export::Default) => format!("const {} = require({});", func.name, string_literal(&import_path)),
    };
    match (project.framework.as_str(), esm_test) {
        ("jest", _) => {}
        ("vitest", _) => code.push_str("import { test } from 'vitest';\n"),
        (_, true) => code.push_str("import test from 'node:test';\n"),
        (_, false) => code.push_str("const test = require('node:test');\n"),
    }
    code.push_str(&import);
    code.push_str("\n\n");
    code.push_str(&format!("test({}, async () => {{\n", string_literal(&name)));
    for line in arrange.iter().chain(assert.iter()) {
        code.push_str(&format!("  {line}\n"));
    }
    code.push_str("});\n");
    Ok(RegressionTest { file, name, code })
}

/// The path the test file imports the culprit module by (`../shipping.js`).
fn relative_import(test_file: &str, module: &str) -> Result<String, RegressionError> {
    let plain = |p: &str| {
        p.split('/')
            .all(|s| !s.is_empty() && s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c)))
    };
    if !plain(module) {
        return Err(refuse(format!("`{module}` is not a plain relative path")));
    }
    let depth = test_file.matches('/').count();
    let up = if depth == 0 {
        "./".to_string()
    } else {
        "../".repeat(depth)
    };
    Ok(format!("{up}{module}"))
}

/// A JSON value for one telemetry input: a finite number, a boolean, or the text.
fn typed(value: &str) -> serde_json::Value {
    match value.trim() {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        v => match v.parse::<f64>() {
            Ok(n) if n.is_finite() && !v.is_empty() => serde_json::json!(n),
            _ => serde_json::Value::String(value.to_string()),
        },
    }
}

/// The object built from inputs whose key starts with `<param>.` (every input when `param` is
/// `None`, keyed by their segments after the first), as a JS literal.
fn object_for(sample: &HashMap<String, String>, param: Option<&str>) -> Option<String> {
    let mut keys: Vec<&String> = sample.keys().collect();
    keys.sort();
    let mut root = serde_json::Map::new();
    for k in keys {
        let path: Vec<&str> = match param {
            Some(p) => match k.strip_prefix(&format!("{p}.")) {
                Some(rest) => rest.split('.').collect(),
                None => continue,
            },
            None => k.split('.').skip(1).collect(),
        };
        if path.is_empty() || path.iter().any(|s| s.is_empty()) {
            continue;
        }
        insert(&mut root, &path, typed(&sample[k]));
    }
    (!root.is_empty()).then(|| {
        serde_json::Value::Object(root)
            .to_string()
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    })
}

fn insert(map: &mut serde_json::Map<String, serde_json::Value>, path: &[&str], value: serde_json::Value) {
    match path {
        [] => {}
        [last] => {
            map.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = map
                .entry((*first).to_string())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if let serde_json::Value::Object(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// The input whose key's last segment is `param`, as a JS literal.
fn scalar_for(sample: &HashMap<String, String>, param: &str) -> Option<String> {
    let mut keys: Vec<&String> = sample.keys().collect();
    keys.sort();
    let key = keys.into_iter().find(|k| k.rsplit('.').next() == Some(param))?;
    Some(
        typed(&sample[key])
            .to_string()
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029"),
    )
}
