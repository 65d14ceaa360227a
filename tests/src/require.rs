//! What a test does when a real service it needs is missing: the Kafka broker and schema
//! registry of the test bed (`deploy/testbed.sh`), or the local model server (`deploy/llm.sh`).
//!
//! One flag per service decides, read here and nowhere else:
//!
//! | `SELFHEAL_REQUIRE_BROKER` / `SELFHEAL_REQUIRE_LLM` | a missing service |
//! |---|---|
//! | unset, or `1` | fails the test, with how to start the service |
//! | `0` | the test prints `SKIPPED` and why, and returns without asserting anything |
//! | anything else | fails the test, naming the bad value |
//!
//! Failing is the default because a skipped test passes: a suite that skips what it cannot
//! reach is green whatever the code does. `scripts/test.sh` exports `1`, so nothing inherited
//! from a developer's shell turns the failures off in CI; `0` is for a developer who knowingly
//! runs a crate's tests without the test bed.
//!
//! This file uses only `std`, so the test crates of the services include it by path
//! (`#[path = "../../../tests/src/require.rs"] mod require;`) instead of depending on the
//! end-to-end crate.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A real service some tests need, the flag that says whether they may skip without it, and
/// how to start it.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// What the service is, for messages.
    pub name: &'static str,
    /// The environment variable that decides whether a test may skip without it.
    pub flag: &'static str,
    /// How to start it.
    pub hint: &'static str,
}

/// The Kafka broker of the test bed.
pub const BROKER: Service = Service {
    name: "the real Kafka broker",
    flag: "SELFHEAL_REQUIRE_BROKER",
    hint: "start it with `deploy/testbed.sh up` and `eval \"$(deploy/testbed.sh env)\"`, or run `scripts/test.sh`",
};

/// The schema registry of the test bed (started with the broker, so under the same flag).
pub const REGISTRY: Service = Service {
    name: "the real schema registry",
    flag: "SELFHEAL_REQUIRE_BROKER",
    hint: "start it with `deploy/testbed.sh up` and `eval \"$(deploy/testbed.sh env)\"`, or run `scripts/test.sh`",
};

/// The Gitea of the test bed (`deploy/gitea.sh`; started by `scripts/test.sh` with the broker,
/// so under the same flag).
pub const GITEA: Service = Service {
    name: "the test bed's Gitea",
    flag: "SELFHEAL_REQUIRE_BROKER",
    hint: "start it with `deploy/gitea.sh up` and `eval \"$(deploy/gitea.sh env)\"`, or run `scripts/test.sh`",
};

/// The local model server (llama.cpp's `llama-server` with SmolLM2).
pub const MODEL: Service = Service {
    name: "the local model server",
    flag: "SELFHEAL_REQUIRE_LLM",
    hint: "start it with `deploy/llm.sh up` and `eval \"$(deploy/llm.sh env)\"`, or run `scripts/test.sh`",
};

/// What to do about a missing service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// Fail the test with this message.
    Fail(String),
    /// Skip the test, printing this message.
    Skip(String),
}

/// The decision for `service`, missing because of `problem`, given its flag's value.
pub fn decide(service: &Service, flag: Option<&str>, problem: &str) -> Missing {
    let Service { name, flag: var, hint } = service;
    match flag.map(str::trim) {
        None | Some("") | Some("1") => Missing::Fail(format!(
            "this test needs {name}, which is missing: {problem}; {hint} \
             ({var} is unset or 1: a missing service fails the test; {var}=0 skips it)"
        )),
        Some("0") => Missing::Skip(format!(
            "SKIPPED: this test needs {name}, which is missing ({problem}); {var}=0 allows the skip"
        )),
        Some(other) => Missing::Fail(format!(
            "{var}={other:?} is neither 0 nor 1; this test needs {name}, which is missing: {problem}"
        )),
    }
}

/// `found` when the service is there; when it is not, fails the test, or (only when its flag
/// is `0`) prints why it is skipped and gives `None`, on which the test returns.
#[track_caller]
pub fn present<T>(service: &Service, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(value) => Some(value),
        Err(problem) => match decide(service, std::env::var(service.flag).ok().as_deref(), &problem) {
            Missing::Fail(message) => panic!("{message}"),
            Missing::Skip(message) => {
                eprintln!("{message}");
                None
            }
        },
    }
}

/// The local model's endpoint and name (`SELFHEAL_TEST_LLM_URL`, `SELFHEAL_TEST_LLM_MODEL`,
/// set by `eval "$(deploy/llm.sh env)"`) once its server answers `GET {url}/models`, which
/// llama-server does only when the model is loaded. See [`present`] for when it is missing.
#[track_caller]
pub fn model() -> Option<(String, String)> {
    present(&MODEL, find_model())
}

fn find_model() -> Result<(String, String), String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (Some(url), Some(model)) = (var("SELFHEAL_TEST_LLM_URL"), var("SELFHEAL_TEST_LLM_MODEL")) else {
        return Err("SELFHEAL_TEST_LLM_URL and SELFHEAL_TEST_LLM_MODEL are not both set".into());
    };
    match http_status(&format!("{}/models", url.trim_end_matches('/'))) {
        Ok(200) => Ok((url, model)),
        Ok(status) => Err(format!("{url}/models answered HTTP {status}")),
        Err(e) => Err(format!("{url} does not answer: {e}")),
    }
}

/// The status code of `GET url` (plain `http://host:port/path` only: the local servers).
pub fn http_status(url: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url} is not a plain http:// URL"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let timeout = Duration::from_secs(5);
    let address = authority
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(|e| format!("{authority}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0_u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(format!("{authority}: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..read]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{authority} did not answer HTTP: {line:?}"))
}
