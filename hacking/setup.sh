#!/usr/bin/env bash
# Create or refresh .venv with the pinned tools, and make this working tree visible to Ansible as
# the collection exchops.kms (a symlink, so edits are seen without reinstalling). Then the same for
# one venv per further ansible-core line that make test runs (.venv-2.16, ...: that line's
# ansible-core and requirements-line.txt, pinned by constraints/ansible-core-LINE.txt).
# A second run with unchanged requirement files only checks hashes and links: a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
python=${PYTHON:-python3.11}

# venv_ready VENV INPUT...: create VENV if it is missing or broken; true when the hash of the
# INPUT files is the one recorded at its last install.
venv_ready() {
    local venv=$1
    shift
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        echo "setup: creating $venv with $("$python" --version)"
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
    [ "$(cat "$@" | sha256sum | cut -d' ' -f1)" = "$(cat "$venv/.setup-hash" 2>/dev/null || true)" ]
}

# link_collection VENV: exchops.kms from the working tree; Ansible scans ansible_collections/ on
# sys.path. Then ansible-test sanity, which seeds pip into its venvs with a downloaded script, is
# given the offline one for the pip version that VENV's ansible-test asks for.
link_collection() {
    local venv=$1 site pip_version cache
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    mkdir -p "$site/ansible_collections/exchops"
    ln -sfn "$root" "$site/ansible_collections/exchops/kms"
    pip_version=$("$venv/bin/python" - <<'PY'
import re, pathlib, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", source.read_text()).group(1))
PY
    )
    cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
    mkdir -p "$(dirname "$cache")"
    if ! cmp -s hacking/get_pip_standin.py "$cache"; then
        cp hacking/get_pip_standin.py "$cache"
    fi
}

core_version() {
    "$1/bin/python" -c 'from ansible.release import __version__; print(__version__)'
}

pip_install() {
    local venv=$1
    shift
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

# .venv: every tool, the newest ansible-core line, and the lab (which runs from here only).
inputs=(requirements-dev.txt constraints.txt)
[ -f tests/lab/pyproject.toml ] && inputs+=(tests/lab/pyproject.toml)
if ! venv_ready .venv "${inputs[@]}"; then
    echo "setup: installing pinned packages into .venv"
    pip_install .venv -r requirements-dev.txt -c constraints.txt
    if [ -f tests/lab/pyproject.toml ]; then
        pip_install .venv --no-deps -e tests/lab
    fi
    cat "${inputs[@]}" | sha256sum | cut -d' ' -f1 > .venv/.setup-hash
fi
link_collection .venv
echo "setup: .venv ready (ansible-core $(core_version .venv), exchops.kms -> $root)"

# One venv per further line, installed side by side.
pids=()
for constraints in constraints/ansible-core-*.txt; do
    line=${constraints#constraints/ansible-core-}
    line=${line%.txt}
    venv=.venv-$line
    if ! venv_ready "$venv" requirements-line.txt "$constraints"; then
        echo "setup: installing ansible-core $line.x and requirements-line.txt into $venv"
        {
            pip_install "$venv" ansible-core -r requirements-line.txt -c "$constraints" \
                && cat requirements-line.txt "$constraints" | sha256sum | cut -d' ' -f1 \
                    > "$venv/.setup-hash"
        } &
        pids+=($!)
    fi
done
for pid in "${pids[@]}"; do
    wait "$pid"
done
for constraints in constraints/ansible-core-*.txt; do
    line=${constraints#constraints/ansible-core-}
    line=${line%.txt}
    link_collection ".venv-$line"
    echo "setup: .venv-$line ready (ansible-core $(core_version ".venv-$line"))"
done
