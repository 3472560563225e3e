#!/usr/bin/env bash
# Resolve requirements-line.txt with the newest ansible-core of LINE (such as 2.16) in a scratch
# venv and write the full set to constraints/ansible-core-LINE.txt (`make lock` runs it per line).
set -euo pipefail
cd "$(dirname "$0")/.."
line=$1
python=${PYTHON:-python3.11}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$python" -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r requirements-line.txt "ansible-core==$line.*"
{
    echo "# Full resolved set for ansible-core $line.x: requirements-line.txt with that line's newest"
    echo "# ansible-core (pip freeze of a fresh venv). Regenerate: make lock"
    "$scratch/venv/bin/python" -m pip freeze --all --exclude pip --exclude setuptools --exclude wheel
} > "constraints/ansible-core-$line.txt"
echo "constraints/ansible-core-$line.txt updated ($(grep '^ansible-core==' "constraints/ansible-core-$line.txt"))"
