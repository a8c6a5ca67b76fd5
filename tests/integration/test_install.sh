#!/usr/bin/env bash
# Installs the build into a fresh prefix, then builds the plugin-author
# guide's example out of tree against the installed SDK only — once with
# pkg-config and once with find_package(dk) — and loads it with the installed
# dkhost. Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in bin/dkhost include/dk/dk.h lib/pkgconfig/dk.pc lib/cmake/dk/dkConfig.cmake \
         lib/dk/plugins/cifar_backbones.so; do
  [ -e "$tmp/prefix/$f" ] || fail "cmake --install did not install $f"
done

# The installed dkhost finds the installed plugins without flags.
"$tmp/prefix/bin/dkhost" list-registry --kind backbone | grep -q ResNet \
  || fail "installed dkhost does not find its installed plugins"

cp -r "$src/docs/examples/tinynet" "$tmp/tinynet"

# 1. pkg-config, through the example's Makefile (no include path into core/).
(cd "$tmp/tinynet" && PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" make -s tinynet.so) \
  || fail "pkg-config build of the example plugin failed"
syms=$(nm -D --defined-only "$tmp/tinynet/tinynet.so" | awk '{print $3}')
[ "$syms" = dk_plugin_entry ] || fail "example plugin exports more than dk_plugin_entry: $syms"
out=$("$tmp/prefix/bin/dkhost" --plugins "$tmp/tinynet" list-registry --kind backbone)
echo "$out" | grep -q TinyNet || fail "TinyNet not listed: $out"
"$tmp/prefix/bin/dkhost" --plugins "$tmp/tinynet" check "$tmp/tinynet/tinynet.yaml" >/dev/null \
  || fail "config using TinyNet does not check"

# A wrong parameter of the third-party type is caught by its schema.
if "$tmp/prefix/bin/dkhost" --plugins "$tmp/tinynet" check "$tmp/tinynet/tinynet.yaml" \
     --cfg-options model.backbone.width=0 2>"$tmp/err"; then
  fail "width=0 accepted"
fi
grep -q "model.backbone.width" "$tmp/err" || fail "width error does not name the key: $(cat "$tmp/err")"

# 2. find_package(dk), installing into the prefix's plugin directory.
cmake -S "$tmp/tinynet" -B "$tmp/tinynet-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_INSTALL_PREFIX="$tmp/prefix" >/dev/null || fail "find_package(dk) configure failed"
cmake --build "$tmp/tinynet-build" >/dev/null || fail "find_package(dk) build failed"
cmake --install "$tmp/tinynet-build" >/dev/null || fail "plugin install failed"
"$tmp/prefix/bin/dkhost" list-registry --kind backbone | grep -q TinyNet \
  || fail "installed TinyNet not found in the default plugin directory"
echo "1 passed, 0 failed"
