#!/usr/bin/env bash
# Makes sure the jars of the Apache Kafka broker the integration tests start
# (tests/support/kafka.py; versions in tools/kafka-broker/pom.xml) are in
# .cache/kafka/<hash of pom.xml>/, gathering them with Maven when they are not. Needs Java 17+
# and Maven; after the first run nothing needs the network (the jars are the class path).
# Silent when the jars are already there; otherwise progress and errors go to stderr.
#
#   ./scripts/ensure-kafka.sh              fetch the jars if needed
#   ./scripts/ensure-kafka.sh --print-dir  print the jar directory (absolute) and exit 0 if
#       the jars are there, 1 if not (nothing is fetched)
set -euo pipefail
cd "$(dirname "$0")/.."

name=ensure-kafka
pom=tools/kafka-broker/pom.xml
cache=.cache/kafka

fail() {
  echo "$name: $*" >&2
  exit 1
}

[ -f "$pom" ] || fail "$pom is missing"
hash=$(sha256sum "$pom" | cut -c1-16)
dir="$cache/$hash"

have_jars() {
  [ -d "$dir" ] && compgen -G "$dir/kafka_2.13-*.jar" >/dev/null
}

case "${1:-}" in
  --print-dir)
    echo "$PWD/$dir"
    have_jars || fail "no Kafka jars in $dir yet; run ./scripts/ensure-kafka.sh"
    exit 0
    ;;
  "") ;;
  *) fail "unknown argument '$1' (usage: $0 [--print-dir])" ;;
esac

if have_jars; then
  exit 0
fi

command -v java >/dev/null 2>&1 \
  || fail "java not found; the test Kafka broker needs Java 17+ (Debian: apt-get install openjdk-17-jre-headless)"
command -v mvn >/dev/null 2>&1 \
  || fail "mvn not found; it is needed once to fetch the Kafka broker jars (Debian: apt-get install maven)"

mkdir -p "$cache"
# Fetch into a directory of our own, then rename it into place: a directory that is there is
# complete, and concurrent runs cannot mix their files.
tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
log="$cache/last-fetch.log"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

echo "$name: fetching the Kafka broker jars (about 45 MB) into $dir ..." >&2
if ! mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$PWD/$tmp" >"$log" 2>&1; then
  reason=$(sed -E 's/\x1b\[[0-9;]*m//g' "$log" | grep -m1 -E '^\[ERROR\] *[^ ]' \
    | sed -E 's/^\[ERROR\] *//; s/ -> \[Help 1\]$//' | cut -c1-300 || true)
  fail "could not fetch the jars with Maven (is Maven Central reachable?): ${reason:-no error message} (full log: $log)"
fi
compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || fail "Maven copied no Kafka jar (see $log)"

if ! mv -T "$tmp" "$dir" 2>/dev/null; then
  have_jars || fail "could not move the jars into $dir"
  # another run finished first; its copy is as good as ours
fi
rm -f "$log"

# Jars for earlier versions of pom.xml are no longer used.
for old in "$cache"/*/; do
  old=${old%/}
  [ "$old" = "$dir" ] || rm -rf "$old"
done
echo "$name: $(ls "$dir"/*.jar | wc -l) jars in $dir" >&2
