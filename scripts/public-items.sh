#!/usr/bin/env bash
# Counts the crate's public items per kind and per top-level module, from
# rustdoc's list of all items (`target/doc/zebrastream/all.html`) of a
# `cargo doc --no-deps --all-features` build. Re-exports of this crate's own
# items are listed where they are re-exported (rustdoc inlines them);
# `#[doc(hidden)]` items are not listed. Modules are counted from the
# generated module pages. Extra arguments go to `cargo doc`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo doc --quiet --no-deps --all-features "$@"
doc=${CARGO_TARGET_DIR:-target}/doc/zebrastream

# One "kind<TAB>path" line per item: the section a link is in gives its kind.
items() {
  sed 's/<h3 id="/\n@/g; s/<li>/\n/g' "$doc/all.html" \
    | sed -n 's/^@\([a-z-]*\)".*/@\1/p; s/^<a href="[^"]*">\([^<]*\)<\/a>.*/\1/p' \
    | awk '/^@/ { kind = substr($0, 2); next } kind != "" { print kind "\t" $0 }'
  # Modules: every directory with a module page, as a path.
  (cd "$doc" && find . -mindepth 2 -name index.html -printf '%h\n') \
    | sed 's|^\./||; s|/|::|g' | awk '{ print "modules\t" $0 }'
}

items | awk -F'\t' '
  {
    split($2, parts, "::")
    module = (index($2, "::") ? parts[1] : "(crate root)")
    if ($1 == "modules") module = parts[1]
    count[module, $1]++; kinds[$1] = 1; modules[module] = 1
    total[$1]++; row[module]++; all++
  }
  END {
    n = split("modules structs enums traits functions types constants macros", order, " ")
    printf "0 %-16s", "module"
    for (i = 1; i <= n; i++) printf " %9s", order[i]
    printf " %9s\n", "total"
    for (name in modules) {
      printf "1 %-16s", name
      for (i = 1; i <= n; i++) printf " %9d", count[name, order[i]]
      printf " %9d\n", row[name]
    }
    printf "2 %-16s", "all"
    for (i = 1; i <= n; i++) printf " %9d", total[order[i]]
    printf " %9d\n", all
    for (k in kinds) {
      known = 0
      for (i = 1; i <= n; i++) if (order[i] == k) known = 1
      if (!known) printf "3 unexpected kind %s: %d items (add it to the table)\n", k, total[k]
    }
  }' | sort -k1,1n -k2,2 | cut -c3-
