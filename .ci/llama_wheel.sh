#!/usr/bin/env bash
# Install llama-cpp-python[server], built with portable CPU flags, into the environment of
# $PYTHON (default: the `python` on PATH). Used by .ci/run and by modelup.sh --cpu.
#
# pip's own wheel cache keys a built wheel by version only, not by build flags, so a
# native (-march=native) build left there by anyone would be handed back to us. On this
# project's machines the CPU advertises AMX but the VM traps it: a native build dies with
# "Illegal instruction" on the first generation. So we build from source with
# --no-cache-dir (and --no-binary, so no prebuilt wheel from an index is taken instead),
# keep our own cache keyed by version and flags, and install only a wheel from it.
#
# Environment: LLAMA_CPP_VERSION (default 0.3.36), LLAMA_CMAKE_ARGS (default
# -DGGML_NATIVE=OFF; modelup.sh --native passes -DGGML_NATIVE=ON), ROUNDTABLE_WHEEL_CACHE.
set -euo pipefail
py="${PYTHON:-python}"
version="${LLAMA_CPP_VERSION:-0.3.36}"
flags="${LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF}"
key="$(printf '%s' "$flags" | tr -c 'A-Za-z0-9=._-' '_')"
cache="${ROUNDTABLE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roundtable/wheels}/llama-cpp-python-$version-$key"
wheel="$(ls "$cache"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ]; then
    echo "building llama-cpp-python $version with CMAKE_ARGS=$flags (10-20 minutes on 2 cores)" >&2
    mkdir -p "$(dirname "$cache")"
    # A private build folder: two builds at once cannot mix their files, and a failed
    # build leaves nothing that looks like a cached wheel.
    tmp="$(mktemp -d "$cache.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    CMAKE_ARGS="$flags" "$py" -m pip wheel --quiet --no-cache-dir --no-binary llama-cpp-python \
        --no-deps -w "$tmp" "llama-cpp-python==$version"
    built="$(ls "$tmp"/llama_cpp_python-"$version"-*.whl | head -1)"
    mkdir -p "$cache"
    mv "$built" "$cache/"
    wheel="$cache/$(basename "$built")"
fi
echo "installing $wheel" >&2
# --force-reinstall: an installed build of the same version (say, a native one) is replaced,
# not kept as "already satisfied". Then the server extra's dependencies, from the same file,
# so pip never looks llama-cpp-python up anywhere else.
"$py" -m pip install --quiet --force-reinstall --no-deps "$wheel"
"$py" -m pip install --quiet "$wheel[server]"
