#!/usr/bin/env bash
# Build the OCI image Istio's WasmPlugin pulls: an OCI image layout (umoci, no daemon, rootless)
# whose single layer holds `plugin.wasm` — the "compat" variant Istio accepts for Docker/OCI
# images. Usage: deploy/oci/build-image.sh WASM LAYOUT_DIR TAG
set -euo pipefail
wasm=$1 layout=$2 tag=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$layout"
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --rootless --image "$layout:$tag" "$work/bundle" >/dev/null
cp "$wasm" "$work/bundle/rootfs/plugin.wasm"
chmod 0644 "$work/bundle/rootfs/plugin.wasm"
umoci repack --image "$layout:$tag" --history.created_by "api-warden: plugin.wasm" "$work/bundle"
umoci config --image "$layout:$tag" \
  --config.label "org.opencontainers.image.title=api-warden" \
  --config.label "org.opencontainers.image.description=api-warden proxy-wasm filter (plugin.wasm)"
umoci gc --layout "$layout"
echo "OCI image layout: $layout (tag $tag); push it with:"
echo "  skopeo copy oci:$layout:$tag docker://<registry>/api-warden:$tag"
