# Sourced by the shell benchmarks: APPLIANCE=(node …) runs the appliance as bench/appliance.ts does, from a fresh
# dist/ build (as installed), or src/ through tsx with BENCH_APPLIANCE=src; BENCH_NODE_FLAGS are node's own
# flags for it (e.g. --perf-basic-prof). Run from the project root.
# The build runs as whoever owns the checkout (as bench/appliance.ts explains), through sh as npm runs it.
bench_build() {
  local script owner
  script=$(node -p "require('./package.json').scripts.build")
  owner=$(stat -c %U .)
  if [ "$(id -u)" = 0 ] && [ "$owner" != root ]; then
    runuser -u "$owner" -- env PATH="$PWD/node_modules/.bin:$PATH" sh -c "$script"
  else
    env PATH="$PWD/node_modules/.bin:$PATH" sh -c "$script"
  fi
}
case "${BENCH_APPLIANCE:-dist}" in
  dist) bench_build && APPLIANCE=(node ${BENCH_NODE_FLAGS:-} dist/main.js) && echo 'bench: the appliance runs from dist/, built just now (BENCH_APPLIANCE=src for src/ through tsx)' >&2 ;;
  src) APPLIANCE=(node ${BENCH_NODE_FLAGS:-} --import tsx src/main.ts) ;;
  *) echo "BENCH_APPLIANCE must be dist or src, not $BENCH_APPLIANCE" >&2; exit 2 ;;
esac
