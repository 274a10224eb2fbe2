#!/usr/bin/env bash
# The project's test command (README "Test"): every crate's unit, property, golden and
# integration tests. Integration tests spawn their own Mosquitto on free ports; with CI=true
# they fail (not skip) when mosquitto is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
