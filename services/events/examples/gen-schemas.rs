//! Regenerates `schemas/*.avsc` from the Rust types: `cargo run -p selfheal-events --example gen-schemas`.

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    selfheal_events::schemas::write_all(&dir)?;
    println!("wrote {}", dir.display());
    Ok(())
}
