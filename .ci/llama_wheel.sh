#!/usr/bin/env bash
# Install llama-cpp-python built with portable CPU flags into the active environment.
#
# pip's own wheel cache keys a built wheel by version only, not by build flags, so a
# native (-march=native) build left there by anyone would be handed back to us. On this
# project's machines the CPU advertises AMX but the VM traps it: a native build dies with
# "Illegal instruction" on the first generation. So we build with --no-cache-dir and keep
# our own cache, keyed by version and flags, and never install a wheel built otherwise.
set -euo pipefail
version="${LLAMA_CPP_VERSION:-0.3.36}"
flags="${LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF}"
key="$(printf '%s' "$flags" | tr -c 'A-Za-z0-9=._-' '_')"
cache="${ROUNDTABLE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roundtable/wheels}/llama-cpp-python-$version-$key"
wheel="$(ls "$cache"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ]; then
    echo "building llama-cpp-python $version with CMAKE_ARGS=$flags (10-20 minutes on 2 cores)" >&2
    mkdir -p "$cache.tmp"
    CMAKE_ARGS="$flags" python -m pip wheel --quiet --no-cache-dir --no-deps \
        -w "$cache.tmp" "llama-cpp-python==$version"
    rm -rf "$cache" && mv "$cache.tmp" "$cache"
    wheel="$(ls "$cache"/llama_cpp_python-"$version"-*.whl | head -1)"
fi
python -m pip install --quiet "$wheel"
python -m pip install --quiet "llama-cpp-python[server]==$version"
