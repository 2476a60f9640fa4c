#!/usr/bin/env bash
# Placeholder: `make fuzz` runs this script; replace it with the real one.
set -euo pipefail
echo "fuzz not written yet"
