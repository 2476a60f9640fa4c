#!/usr/bin/env bash
# Placeholder: `make demo` runs this script; replace it with the real one.
set -euo pipefail
echo "demo not written yet"
