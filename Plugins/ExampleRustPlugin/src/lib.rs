//! The `rust-example` plugin: a stephost step plugin in Rust, against `stephost.h` only.
//!
//! This commit holds only the bindings (`abi.rs`); the plugin's entry point and step follow.

mod abi;

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes this crate's layout report to $STEPHOST_RUST_LAYOUT_OUT, for scripts/check-rust-bindings
    /// to compare with layout/print_layout.c's. Without the variable it only checks the report's shape.
    #[test]
    fn layout_report() {
        let report = abi::layout_report();
        for line in report.lines() {
            assert!(line.split(' ').count() >= 3, "malformed line {line:?}");
        }
        if let Some(path) = std::env::var_os("STEPHOST_RUST_LAYOUT_OUT") {
            std::fs::write(&path, report).expect("write the layout report");
        }
    }
}
