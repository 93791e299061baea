#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# gpu stage: onnxruntime-node's CUDA 12 execution provider next to this platform's binding
# (node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_{cuda,shared}.so),
# fetched by onnxruntime-node's own install script from Microsoft's
# Microsoft.ML.OnnxRuntime.Gpu.Linux NuGet package, as `npm install` does without
# ONNXRUNTIME_NODE_INSTALL=skip. CUDA 12 and cuDNN 9 come from the stage's base image.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
unset ONNXRUNTIME_NODE_INSTALL npm_config_onnxruntime_node_install
ort=node_modules/onnxruntime-node
ONNXRUNTIME_NODE_INSTALL_CUDA=v12 node "$ort/script/install.js"
here=$(node -p 'process.platform + "/" + process.arch')
for lib in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
  if [ ! -f "$ort/bin/napi-v6/$here/$lib" ]; then
    echo "install-gpu: $ort/bin/napi-v6/$here/$lib is missing after the install script" >&2
    exit 1
  fi
done
echo "install-gpu: CUDA execution provider installed for $here"
