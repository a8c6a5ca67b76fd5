#!/usr/bin/env bash
# A third party's view of dkhost: install the build into a prefix, move the
# prefix elsewhere, and use only what is in it.
#
#   1. Build tests/integration/third_party/ (one plugin with a backbone, a
#      transform, a hook, a metric and a custom op with its backward) with
#      find_package(dk), with no include path into the source or build tree,
#      and train with it through the installed dkhost on the runner tests'
#      toy data set: the hook's lines are in the log (among them a gradcheck
#      of the op against central differences), the metric's values are in the
#      JSON-lines file and plausible, the loss falls, the backbone's weights
#      behind the op moved (its backward ran), checkpoints are written and
#      `--resume-from auto` continues from the last one.
#   2. `dkhost new-plugin` for every kind, with the template files removed
#      from the prefix (it must use its built-in copy): each plugin builds
#      warning-free with its Makefile (pkg-config) and its CMakeLists.txt
#      (find_package), exports only dk_plugin_entry, is listed by
#      list-registry, and the example config passes `dkhost check`.
#   3. new-plugin's mistakes: a non-empty DIR, a bad NAME, an unknown kind.
#
# Usage: test_third_party.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset DK_PLUGIN_PATH

cmake --install "$build" --prefix "$tmp/installed" >/dev/null
[ -f "$tmp/installed/share/dk/template/backbone.c" ] || fail "the template was not installed"
mv "$tmp/installed" "$tmp/prefix" # relocated: nothing may point back at the install path
prefix=$tmp/prefix
dk=$prefix/bin/dkhost
toy=$build/tests/runner/plugins # the toy data set's plugin (a test fixture)
[ -f "$toy/toy_blobs.so" ] || fail "the toy data set's plugin is not built: $toy/toy_blobs.so"

# ---- 1. the acme plugin ------------------------------------------------------------------

cp -r "$src/tests/integration/third_party" "$tmp/acme"
cmake -S "$tmp/acme" -B "$tmp/acme/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$tmp/out" 2>&1 \
  || fail "find_package(dk) configure of the acme plugin failed: $(cat "$tmp/out")"
cmake --build "$tmp/acme/build" >"$tmp/out" 2>&1 \
  || fail "building the acme plugin failed: $(cat "$tmp/out")"
# Every include path of the compile is inside the prefix or the plugin's folder.
incs=$(grep -o -- '-\(I\|isystem \)[^ "]*' "$tmp/acme/build/compile_commands.json" \
  | sed 's/^-I//; s/^-isystem //' | sort -u)
[ -n "$incs" ] || fail "no include path in the acme compile"
for d in $incs; do
  case "$d" in
    "$prefix"/* | "$tmp/acme"*) ;;
    *) fail "the acme plugin was compiled with the include path $d, outside the prefix" ;;
  esac
done
syms=$(nm -D --defined-only "$tmp/acme/build/acme.so" | awk '{print $3}')
[ "$syms" = dk_plugin_entry ] || fail "acme.so exports more than dk_plugin_entry: $syms"

plugins=(--plugins "$tmp/acme/build" --plugins "$toy")
"$dk" "${plugins[@]}" list-registry >"$tmp/reg"
for t in AcmeNet AcmeTag AcmeProbe AcmeError; do
  grep -q "^    $t  \[acme\]" "$tmp/reg" || fail "list-registry does not list $t: $(cat "$tmp/reg")"
done
grep -q "Refused (0)" "$tmp/reg" || fail "a plugin was refused: $(cat "$tmp/reg")"

work=$tmp/work
"$dk" "${plugins[@]}" "$tmp/acme/acme.yaml" --work-dir "$work" >"$tmp/out" 2>&1 \
  || fail "training with the acme plugin failed: $(cat "$tmp/out")"
log=$(ls "$work"/*.log)
jsonl=$(ls "$work"/*.jsonl)

# The hook: its gradcheck ran (a failure would have stopped the run), its loss
# lines are there at its interval, and the loss fell well below ln 4 = 1.386.
grep -q "AcmeProbe: gradcheck of acme.softsign: max error" "$log" || fail "no gradcheck line: $(cat "$log")"
[ "$(grep -c "AcmeProbe: iteration [0-9]*: loss" "$log")" = 6 ] \
  || fail "expected 6 AcmeProbe loss lines (24 iterations, interval 4): $(grep AcmeProbe "$log")"
loss=$(sed -n 's/.*AcmeProbe: iteration 24: loss \([0-9.]*\).*/\1/p' "$log")
awk -v l="$loss" 'BEGIN { exit !(l != "" && l < 0.5) }' || fail "the loss did not fall below 0.5: '$loss'"
# The backbone's conv weights learn only through acme.softsign's backward.
moved=$(sed -n 's/.*AcmeProbe: backbone.conv.weight moved \([0-9.]*\).*/\1/p' "$log")
awk -v m="$moved" 'BEGIN { exit !(m != "" && m > 0.01) }' \
  || fail "the weights behind acme.softsign did not move ('$moved'): its backward did not run"

# The metric: one record per validation, error a percentage that ends low
# (the toy set is separable), and every sample went through AcmeTag.
[ "$(grep -c '"acmeerror/error"' "$jsonl")" = 3 ] || fail "expected 3 acmeerror records: $(cat "$jsonl")"
awk '/"acmeerror\/error"/ {
       e = $0; sub(/.*"acmeerror\/error": /, "", e); sub(/[,}].*/, "", e)
       t = $0; sub(/.*"acmeerror\/tagged": /, "", t); sub(/[,}].*/, "", t)
       if (e + 0 < 0 || e + 0 > 100 || t + 0 != 100) bad = 1
       last = e + 0 }
     END { exit bad || last > 10 }' "$jsonl" \
  || fail "implausible acmeerror values: $(grep acmeerror "$jsonl")"

# Checkpoints, and a resumed run that goes on from the last one.
for e in 1 2 3; do [ -f "$work/epoch_$e.dkpt" ] || fail "no checkpoint epoch_$e.dkpt"; done
"$dk" ckpt verify "$work/epoch_3.dkpt" >/dev/null || fail "epoch_3.dkpt does not verify"
"$dk" "${plugins[@]}" "$tmp/acme/acme.yaml" --work-dir "$work" --resume-from auto \
  --cfg-options train_cfg.max_epochs=5 >"$tmp/out" 2>&1 || fail "resuming failed: $(cat "$tmp/out")"
grep -q "resumed from .*epoch_3.dkpt: epoch 3, iteration 24" "$tmp/out" \
  || fail "the run did not resume from epoch_3.dkpt: $(cat "$tmp/out")"
first=$(grep -o "AcmeProbe: iteration [0-9]*" "$tmp/out" | head -1)
[ "$first" = "AcmeProbe: iteration 28" ] || fail "the resumed run started at '$first', not iteration 28"
[ -f "$work/epoch_5.dkpt" ] || fail "the resumed run wrote no epoch_5.dkpt"

# ---- 2. new-plugin, every kind -----------------------------------------------------------

rm -rf "$prefix/share/dk/template" # new-plugin must not need it
have_fmnist=0
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && have_fmnist=1
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
for kind in backbone neck head hook transform metric; do
  name=Gen${kind^}
  snake=gen_$kind
  dir=$tmp/gen/$kind
  "$dk" new-plugin --kind "$kind" "$name" "$dir" >"$tmp/out" 2>&1 \
    || fail "new-plugin --kind $kind failed: $(cat "$tmp/out")"
  for f in "$snake.c" "$snake.yaml" CMakeLists.txt Makefile; do
    [ -f "$dir/$f" ] || fail "new-plugin --kind $kind wrote no $f"
  done
  ! grep -qi "template_\?name" "$dir"/* || fail "placeholders left in $dir: $(grep -i "template_\?name" "$dir"/*)"
  (cd "$dir" && make -s CFLAGS="-O2 -Wall -Wextra -Werror") >"$tmp/out" 2>&1 \
    || fail "make (pkg-config) of the $kind plugin failed: $(cat "$tmp/out")"
  cmake -S "$dir" -B "$dir/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS=-Werror \
    >"$tmp/out" 2>&1 && cmake --build "$dir/build" >>"$tmp/out" 2>&1 \
    || fail "CMake build of the $kind plugin failed: $(cat "$tmp/out")"
  for so in "$dir/$snake.so" "$dir/build/$snake.so"; do
    syms=$(nm -D --defined-only "$so" | awk '{print $3}')
    [ "$syms" = dk_plugin_entry ] || fail "$so exports more than dk_plugin_entry: $syms"
    "$dk" --plugins "$(dirname "$so")" list-registry --kind "$kind" >"$tmp/out"
    grep -q "^    $name  \[$snake\]" "$tmp/out" || fail "$so: $name not listed: $(cat "$tmp/out")"
  done
  if [ $have_fmnist = 1 ]; then
    "$dk" --plugins "$dir" check "$dir/$snake.yaml" >"$tmp/out" 2>&1 \
      || fail "dkhost check refuses the generated $kind config: $(cat "$tmp/out")"
  fi
done
[ $have_fmnist = 1 ] || echo "note: no Fashion-MNIST: the generated configs were not checked"

# ---- 3. new-plugin's mistakes ------------------------------------------------------------

# Runs dkhost with the remaining arguments; expects exit code $1 and every
# pattern given after "--" in its stderr.
expect() {
  local code=$1 args=() rc
  shift
  while [ "$1" != -- ]; do args+=("$1"); shift; done
  shift
  "$dk" "${args[@]}" >"$tmp/out" 2>"$tmp/err" && rc=0 || rc=$?
  [ "$rc" = "$code" ] || fail "dkhost ${args[*]}: exit $rc, expected $code: $(cat "$tmp/err")"
  for p in "$@"; do
    grep -qF -- "$p" "$tmp/err" || fail "dkhost ${args[*]}: stderr lacks '$p': $(cat "$tmp/err")"
  done
}
expect 5 new-plugin --kind hook Other "$tmp/gen/hook" -- "already exists and is not empty"
expect 2 new-plugin --kind head my-net "$tmp/bad" -- "'my-net' is not a valid type name" \
  "did you mean 'MyNet'?"
expect 2 new-plugin --kind head 9Lives "$tmp/bad" -- "'9Lives' is not a valid type name"
expect 2 new-plugin --kind head DkHead "$tmp/bad" -- "its C prefix would be dk_"
expect 2 new-plugin --kind bakbone MyNet "$tmp/bad" -- "unknown kind 'bakbone'" \
  "did you mean 'backbone'?"
expect 2 new-plugin --kind loss MyLoss "$tmp/bad" -- "no template for kind 'loss'"
expect 2 new-plugin MyNet "$tmp/bad" -- "needs --kind KIND"
expect 2 new-plugin --kind head MyNet -- "needs a DIR"
expect 2 new-plugin --knd head MyNet "$tmp/bad" -- "unknown option '--knd'" "did you mean '--kind'?"
[ ! -e "$tmp/bad" ] || fail "a refused new-plugin created its DIR"
# The non-empty DIR kept what it had.
cmp -s "$tmp/gen/hook/gen_hook.c" <("$dk" new-plugin --kind hook GenHook "$tmp/again" >/dev/null &&
  cat "$tmp/again/gen_hook.c") || fail "a refused new-plugin changed the files in its DIR"
echo "1 passed, 0 failed"
