//! The JUnit 5 regression test: a new class in the culprit's package under `src/test/java`
//! (the module's, for a multi-module build) that calls the culprit method with the failing
//! input and asserts what the fix does.
//!
//! - **Where**: `…/src/test/java/<package>/Selfheal<incident>Test.java` — Surefire's and
//!   Gradle's default includes find `*Test` classes; the same package reaches package-private
//!   methods. Existing tests are never touched.
//! - **How the culprit is called**: a static method as `Type.method(…)`; an instance method on
//!   `new Type()` (the no-argument constructor, declared or implicit) or, failing that, the
//!   constructor with the fewest parameters that all have plain values (strings, numbers,
//!   empty collections); a constructor culprit as `new Type(…)`. Private methods, nested types,
//!   abstract types, enums and records are refused.
//! - **Which input**: for each parameter, the failing request's input whose key's last segment
//!   is the parameter name (`inventory.sku` → `sku`, case and `_` ignored) when it converts to
//!   the parameter's type; else what the crash class and the fix say (the null parameter gets
//!   `null`, the divisor `0`, the index the message's index, the collection an empty one, the
//!   parsed text `"not-a-number"`, the lookup key a key no map holds); else a plain value of
//!   the type (`1`, `"x"`, `List.of()`). A parameter of another type is refused.
//! - **What is asserted**: `assertThrows(X.class, …)` when the fix throws the code's input
//!   exception, `assertEquals(v, …)` when it returns the method's default, else
//!   `assertDoesNotThrow(…)`. On the buggy code each fails with the incident's exception in
//!   the report (`expected: <X> but was: <java.lang.NullPointerException>`).
//!
//! Untrusted text (telemetry inputs) only reaches the code as escaped string literals or
//! re-printed numbers; names come from the source and must be plain identifiers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use selfheal_events::RegressionTest;

use super::syntax::{JavaSource, Method, Param, TypeDecl, is_identifier, string_literal};
use super::templates;
use crate::languages::{Expectation, RegressionError, RegressionRequest, id_token, refuse, safe_chars};

/// JDK types the generated code may use, with their imports.
const JDK_IMPORTS: &[(&str, &str)] = &[
    ("List.", "java.util.List"),
    ("Set.", "java.util.Set"),
    ("Map.", "java.util.Map"),
    ("Optional.", "java.util.Optional"),
    ("Collections.", "java.util.Collections"),
    ("BigDecimal", "java.math.BigDecimal"),
    ("BigInteger", "java.math.BigInteger"),
];

/// Exceptions of `java.lang` (no import needed).
const JAVA_LANG: &[&str] = &[
    "IllegalArgumentException",
    "IllegalStateException",
    "RuntimeException",
    "NumberFormatException",
    "ArithmeticException",
    "NullPointerException",
    "IndexOutOfBoundsException",
    "ArrayIndexOutOfBoundsException",
    "UnsupportedOperationException",
    "Exception",
];

/// The test file, class and method for a culprit, or why none can be written.
pub fn write(request: &RegressionRequest<'_>) -> Result<RegressionTest, RegressionError> {
    let site = request.site;
    let project = request.project;
    if !project.framework.starts_with("junit5") {
        return Err(refuse(format!(
            "the project's tests do not use JUnit 5 (framework `{}`)",
            project.framework
        )));
    }
    let rc = site.root_cause;
    let src = JavaSource::new(site.source);
    let index = usize::try_from(rc.line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .filter(|i| *i < src.line_count())
        .ok_or_else(|| refuse(format!("line {} is outside {}", rc.line, rc.file)))?;
    let offset = src
        .first_code_on_line(index)
        .ok_or_else(|| refuse(format!("line {} holds no code", rc.line)))?;
    let method = src
        .method_at(offset)
        .ok_or_else(|| refuse(format!("line {} is not inside a method", rc.line)))?;
    check_function(&rc.function, &method)?;
    if method.is_private {
        return Err(refuse(format!(
            "`{}` is private: a test cannot call it (its callers are not known here)",
            method.name
        )));
    }
    let owner = src
        .type_at(offset)
        .ok_or_else(|| refuse("the culprit is not inside a type"))?;
    if owner.depth > 0 {
        return Err(refuse(format!(
            "`{}` is a nested type: only top-level types are called",
            owner.name
        )));
    }
    let package = src.package().unwrap_or_default();

    // What the fix decided at this site: its parameters and what the test asserts.
    let (params, expect) = match request.fix {
        Some(fix) => (fix.params.clone(), fix.expect.clone()),
        None => (analyse(request), Expectation::Completes),
    };
    let mut ctx = Values {
        inputs: site
            .diag
            .sample_inputs
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        params: &params,
        incident: &site.diag.incident_id,
        through_map: None,
    };
    ctx.through_map = through_map(&src, &method, offset, &ctx);
    let mut arguments = Vec::new();
    for param in &method.params {
        arguments.push(ctx.argument(param)?);
    }
    let args = arguments.join(", ");

    let (setup, call) = if method.constructor {
        (String::new(), format!("new {}({args})", owner.name))
    } else if method.is_static {
        (String::new(), format!("{}.{}({args})", owner.name, method.name))
    } else {
        let construct = constructor_call(&src, &owner, &ctx)?;
        (
            format!("        {} subject = {construct};\n", owner.name),
            format!("subject.{}({args})", method.name),
        )
    };

    let exception = rc.exception_type.rsplit(['.', '$']).next().unwrap_or("Exception");
    let exception = if is_identifier(exception) {
        exception
    } else {
        "Exception"
    };
    let returns_value = method.return_type != "void" && !method.constructor;
    let (assertion, assert_import) = match &expect {
        Expectation::Raises(x) if is_type_name(x) => (
            format!("        assertThrows({x}.class, () -> {call});\n"),
            "assertThrows",
        ),
        Expectation::Returns(v) if returns_value && v.starts_with("BigDecimal") => (
            format!("        assertEquals(0, {v}.compareTo({call}));\n"),
            "assertEquals",
        ),
        Expectation::Returns(v) if returns_value => (format!("        assertEquals({v}, {call});\n"), "assertEquals"),
        _ => (
            format!("        assertDoesNotThrow(() -> {call});\n"),
            "assertDoesNotThrow",
        ),
    };
    let test_name = format!("{}NoLongerThrows{exception}", method_token(&method));
    let class = format!("Selfheal{}Test", id_token(&site.diag.incident_id, request.long_name));

    // Imports: JUnit, the JDK types the values use, the exception the fix throws.
    let body = format!("{setup}{assertion}");
    let mut imports: BTreeSet<String> = BTreeSet::new();
    imports.insert("org.junit.jupiter.api.Test".into());
    for (needle, import) in JDK_IMPORTS {
        if body.contains(needle) {
            imports.insert((*import).to_string());
        }
    }
    if let Expectation::Raises(x) = &expect
        && !x.contains('.')
        && !JAVA_LANG.contains(&x.as_str())
        && let Some((_, qualified)) = src.imports().into_iter().find(|(simple, _)| simple == x)
    {
        imports.insert(qualified);
    }
    let mut code = String::new();
    if !package.is_empty() {
        code.push_str(&format!("package {package};\n\n"));
    }
    code.push_str(&format!(
        "import static org.junit.jupiter.api.Assertions.{assert_import};\n\n"
    ));
    for import in &imports {
        code.push_str(&format!("import {import};\n"));
    }
    code.push_str(&format!(
        "\n/**\n * Written by selfheal for incident {incident} (fingerprint {fp}): `{ty}.{m}` threw\n * {exception} at line {line} with this input; {what}.\n */\nclass {class} {{\n\n    @Test\n    void {test_name}() {{\n{body}    }}\n}}\n",
        incident = safe_chars(&site.diag.incident_id),
        fp = safe_chars(&site.diag.fingerprint),
        ty = owner.name,
        m = method.name,
        line = rc.line,
        what = match &expect {
            Expectation::Raises(x) if is_type_name(x) => format!("the fix answers it with {x}"),
            Expectation::Returns(v) if returns_value => format!("the fix returns {}", safe_chars(v)),
            _ => "the call must now complete".to_string(),
        }
    ));
    Ok(RegressionTest {
        file: test_path(&rc.file, &project.test_root, &package, &class),
        name: test_name,
        code,
    })
}

/// Whether `x` is a (dotted) type name.
fn is_type_name(x: &str) -> bool {
    x.split('.').all(is_identifier)
}

/// The test file's path: the culprit's `src/main/java` swapped for `src/test/java` (so a
/// module's test goes in that module), else the project's test root; then the package.
pub fn test_path(culprit: &str, test_root: &str, package: &str, class: &str) -> String {
    let package_dir = package.replace('.', "/");
    let root = match culprit.find("src/main/java/") {
        Some(at) => format!("{}src/test/java", &culprit[..at]),
        None => test_root.trim_end_matches('/').to_string(),
    };
    let root = if root.is_empty() || root == "." {
        String::new()
    } else {
        format!("{root}/")
    };
    if package_dir.is_empty() {
        format!("{root}{class}.java")
    } else {
        format!("{root}{package_dir}/{class}.java")
    }
}

/// The method name for the test's name: `quote`, `init` for a constructor.
fn method_token(method: &Method) -> String {
    if method.constructor {
        "constructor".to_string()
    } else {
        method.name.clone()
    }
}

/// The diagnosis names the method the line is in (`quote`, `Inventory.quote`,
/// `lambda$quote$0`, `<init>` for a constructor).
fn check_function(function: &str, method: &Method) -> Result<(), RegressionError> {
    let last = function.rsplit('.').next().unwrap_or(function);
    let name = match last.strip_prefix("lambda$") {
        Some(rest) => rest.split('$').next().unwrap_or(rest),
        None => last,
    };
    let matches = name.is_empty() || name == method.name || method.constructor && name == "<init>";
    if matches {
        Ok(())
    } else {
        Err(refuse(format!(
            "line is in `{}`, the diagnosis names `{function}`",
            method.name
        )))
    }
}

/// The fix parameters of the first Java template that applies to the unfixed site (for a
/// learned diff, whose own parameters are not known).
fn analyse(request: &RegressionRequest<'_>) -> BTreeMap<String, String> {
    for template in templates::all() {
        if template.applies(request.site.diag)
            && let Ok(fix) = template.apply(&request.site)
        {
            return fix.params;
        }
    }
    BTreeMap::new()
}

/// Chooses argument values (see the module docs).
struct Values<'a> {
    inputs: HashMap<String, String>,
    params: &'a BTreeMap<String, String>,
    incident: &'a str,
    /// A map parameter the parsed text is read from, and the map that carries the bad text.
    through_map: Option<(String, String)>,
}

impl Values<'_> {
    fn param(&self, key: &str) -> &str {
        self.params.get(key).map(String::as_str).unwrap_or("")
    }

    /// The failing input for a parameter name, converted to its type.
    fn evidence(&self, param: &Param) -> Option<String> {
        let want = normalise(&param.name);
        let mut keys: Vec<&String> = self.inputs.keys().collect();
        keys.sort();
        keys.into_iter()
            .filter(|k| normalise(k.rsplit('.').next().unwrap_or(k)) == want)
            .find_map(|k| literal(&param.ty, &self.inputs[k]))
    }

    fn argument(&self, param: &Param) -> Result<String, RegressionError> {
        if let Some((name, value)) = &self.through_map
            && *name == param.name
        {
            return Ok(value.clone());
        }
        let kind = self.param("kind").to_string();
        let subject = self.param("subject").to_string();
        let key = self.param("key").to_string();
        let is_subject = subject == param.name;
        let derived: Option<String> = match kind.as_str() {
            "null-param" if is_subject && !is_primitive(&param.ty) => return Ok("null".into()),
            "missing-key" | "empty-optional" if key == param.name => {
                self.evidence(param).or_else(|| self.missing_key(&param.ty))
            }
            "divisor" if is_subject => self.evidence(param).or_else(|| zero(&param.ty)),
            "empty" if is_subject => return empty(&param.ty).ok_or_else(|| no_value(param)),
            "index" if is_subject => {
                let index = self.param("index").parse::<i64>().unwrap_or(-1);
                self.evidence(param).or_else(|| literal(&param.ty, &index.to_string()))
            }
            "index" if self.param("container") == param.name => {
                return self
                    .evidence(param)
                    .or_else(|| empty(&param.ty))
                    .ok_or_else(|| no_value(param));
            }
            "parse" if is_subject => self.evidence(param).or_else(|| literal(&param.ty, "not-a-number")),
            _ => None,
        };
        if let Some(value) = derived {
            return Ok(value);
        }
        self.evidence(param)
            .or_else(|| neutral(&param.ty))
            .ok_or_else(|| no_value(param))
    }

    /// A key no map of the code holds, of the key's type.
    fn missing_key(&self, ty: &str) -> Option<String> {
        match base_type(ty) {
            "String" | "CharSequence" | "Object" => Some(string_literal(&format!(
                "selfheal-missing-{}",
                id_token(self.incident, false)
            ))),
            "int" | "Integer" | "long" | "Long" => literal(ty, "-1"),
            _ => None,
        }
    }
}

/// When the parsed text is a local read from a map parameter (`String raw =
/// params.getOrDefault("limit", "20")`), that parameter and a map holding the bad text under
/// that key (the incident's input for the key, else `"not-a-number"`).
fn through_map(src: &JavaSource<'_>, method: &Method, before: usize, ctx: &Values<'_>) -> Option<(String, String)> {
    if ctx.param("kind") != "parse" {
        return None;
    }
    let init = src.declaration(method, ctx.param("subject"), before)?.init?;
    let (receiver, rest) = init.split_once(".getOrDefault(").or_else(|| init.split_once(".get("))?;
    let param = method.params.iter().find(|p| p.name == receiver.trim())?;
    if !matches!(
        base_type(&param.ty),
        "Map" | "HashMap" | "SortedMap" | "TreeMap" | "LinkedHashMap"
    ) {
        return None;
    }
    let key = rest.split([',', ')']).next()?.trim();
    let key_text = key.strip_prefix('"')?.strip_suffix('"')?;
    if !key_text
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
    {
        return None;
    }
    let wanted = normalise(key_text);
    let mut keys: Vec<&String> = ctx.inputs.keys().collect();
    keys.sort();
    let bad = keys
        .into_iter()
        .find(|k| normalise(k.rsplit('.').next().unwrap_or(k)) == wanted)
        .map(|k| ctx.inputs[k].clone())
        .unwrap_or_else(|| "not-a-number".to_string());
    Some((
        param.name.clone(),
        format!("Map.of({}, {})", string_literal(key_text), string_literal(&bad)),
    ))
}

fn no_value(param: &Param) -> RegressionError {
    refuse(format!(
        "no value for parameter `{}` of type `{}`: the evidence has none and no plain value of that type exists",
        param.name, param.ty
    ))
}

/// The receiver: `new Type()` or the simplest constructor with plain arguments.
fn constructor_call(src: &JavaSource<'_>, owner: &TypeDecl, ctx: &Values<'_>) -> Result<String, RegressionError> {
    if owner.is_abstract || owner.kind != "class" {
        return Err(refuse(format!(
            "`{}` is an abstract class, interface, enum or record: the test cannot make one",
            owner.name
        )));
    }
    let mut constructors: Vec<Method> = src
        .methods()
        .into_iter()
        .filter(|m| {
            m.constructor && m.name == owner.name && owner.body_open < m.body_open && m.body_close < owner.body_close
        })
        .collect();
    if constructors.is_empty() {
        return Ok(format!("new {}()", owner.name));
    }
    constructors.retain(|m| !m.is_private);
    constructors.sort_by_key(|m| m.params.len());
    for constructor in &constructors {
        let values: Option<Vec<String>> = constructor
            .params
            .iter()
            .map(|p| ctx.evidence(p).or_else(|| neutral(&p.ty)))
            .collect();
        if let Some(values) = values {
            return Ok(format!("new {}({})", owner.name, values.join(", ")));
        }
    }
    Err(refuse(format!(
        "cannot make a `{}`: no constructor is callable with plain values",
        owner.name
    )))
}

/// `inventory_sku`, `inventorySku` → `inventorysku`.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The type without generics and array brackets, without package.
fn base_type(ty: &str) -> &str {
    let ty = ty.split('<').next().unwrap_or(ty).trim();
    ty.rsplit('.').next().unwrap_or(ty)
}

fn is_primitive(ty: &str) -> bool {
    matches!(
        ty,
        "int" | "long" | "short" | "byte" | "double" | "float" | "boolean" | "char"
    )
}

/// A telemetry value as a literal of `ty`, when it converts.
fn literal(ty: &str, value: &str) -> Option<String> {
    let value = value.trim_end_matches('\0');
    if ty.ends_with("[]") {
        return None;
    }
    match base_type(ty) {
        "String" | "CharSequence" | "Object" => Some(string_literal(value)),
        "int" | "Integer" => value.trim().parse::<i32>().ok().map(|n| n.to_string()),
        "short" | "Short" => value.trim().parse::<i16>().ok().map(|n| format!("(short) {n}")),
        "byte" | "Byte" => value.trim().parse::<i8>().ok().map(|n| format!("(byte) {n}")),
        "long" | "Long" => value.trim().parse::<i64>().ok().map(|n| format!("{n}L")),
        "double" | "Double" => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| format!("{f:?}")),
        "float" | "Float" => value
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| format!("{f:?}f")),
        "boolean" | "Boolean" => matches!(value.trim(), "true" | "false").then(|| value.trim().to_string()),
        "BigDecimal" => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|_| format!("new BigDecimal({})", string_literal(value.trim()))),
        "BigInteger" => value
            .trim()
            .parse::<i128>()
            .ok()
            .map(|_| format!("new BigInteger({})", string_literal(value.trim()))),
        _ => None,
    }
}

/// Zero of a numeric type.
fn zero(ty: &str) -> Option<String> {
    match base_type(ty) {
        "BigDecimal" => Some("BigDecimal.ZERO".into()),
        "BigInteger" => Some("BigInteger.ZERO".into()),
        _ => literal(ty, "0"),
    }
}

/// An empty value of a collection, array, Optional or String type.
fn empty(ty: &str) -> Option<String> {
    if let Some(element) = ty.strip_suffix("[]") {
        let element = element.split('<').next().unwrap_or(element).trim();
        return Some(format!("new {element}[0]"));
    }
    Some(
        match base_type(ty) {
            "List" | "Collection" | "Iterable" | "ArrayList" => "List.of()",
            "Set" | "SortedSet" | "NavigableSet" => "Set.of()",
            "Map" => "Map.of()",
            "Optional" => "Optional.empty()",
            "Iterator" => "Collections.emptyIterator()",
            "String" | "CharSequence" => "\"\"",
            _ => return None,
        }
        .to_string(),
    )
}

/// A plain value of a type: what a test writes when the input does not matter.
fn neutral(ty: &str) -> Option<String> {
    match base_type(ty) {
        "String" | "CharSequence" | "Object" => Some("\"x\"".into()),
        "boolean" | "Boolean" => Some("false".into()),
        "char" | "Character" => Some("'x'".into()),
        "BigDecimal" => Some("BigDecimal.ONE".into()),
        "BigInteger" => Some("BigInteger.ONE".into()),
        "int" | "Integer" | "long" | "Long" | "short" | "Short" | "byte" | "Byte" | "double" | "Double" | "float"
        | "Float" => literal(ty, "1"),
        _ => empty(ty).filter(|v| v != "\"\""),
    }
}
