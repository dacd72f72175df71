#!/bin/sh
# Unpacks Debian's arm64 Node.js and the libraries it needs into DIR (no install, nothing of the
# host replaced), so that `qemu-aarch64 -L DIR DIR/usr/bin/node` runs arm64 JavaScript here.
# test/package.test.ts uses it (through $GLONET_ARM64_ROOT) to load the linux-arm64 prebuilt
# binary of the MLP engine. Needs root, Debian's package archive, and qemu-user for the test.
#
#   scripts/arm64-node-root.sh /opt/glonet-arm64-root
set -eu
dir=${1:?usage: scripts/arm64-node-root.sh DIR}
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -qq
fi
deps() {
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances --no-pre-depends nodejs:arm64 | grep -v '^ ' | sort -u
}
# The arm64 libraries and Node.js itself, and the architecture-independent node-* packages that
# Debian's Node.js loads its bundled JavaScript from.
pkgs=$(deps | grep -E '^(lib[^ <>]*|zlib1g|gcc-[0-9]+-base|nodejs):arm64$|^node-[a-z0-9.-]+$')
tmp=$(mktemp -d)
(cd "$tmp" && apt-get download $pkgs >/dev/null 2>&1)
mkdir -p "$dir"
for f in "$tmp"/*.deb; do dpkg -x "$f" "$dir"; done
rm -rf "$tmp"
echo "arm64 Node.js $(qemu-aarch64 -L "$dir" "$dir/usr/bin/node" --version 2>/dev/null || echo '(qemu-aarch64 missing)') in $dir"
