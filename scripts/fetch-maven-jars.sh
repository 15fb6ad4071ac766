#!/usr/bin/env bash
# Makes sure the runtime jars of a pom.xml under tools/ are in CACHE_DIR/<hash of pom.xml>/,
# gathering them with Maven when they are not; after the first run nothing needs the network.
# Called by ensure-hapi-validator.sh and ensure-kafka.sh, which say what to fetch.
set -euo pipefail
cd "$(dirname "$0")/.."

# usage: fetch-maven-jars.sh NAME POM CACHE_DIR MARKER_GLOB WHAT SIZE [--print-dir]
#   NAME         the calling script's name, for messages
#   POM          the pom.xml whose runtime dependencies are the jars
#   CACHE_DIR    where <hash of pom>/ directories live
#   MARKER_GLOB  a jar whose presence says the directory is complete (e.g. kafka_2.13-*.jar)
#   WHAT, SIZE   words for the progress line ("the Kafka broker jars", "about 45 MB")
name=$1 pom=$2 cache=$3 marker=$4 what=$5 size=$6
shift 6

fail() {
  echo "$name: $*" >&2
  exit 1
}

[ -f "$pom" ] || fail "$pom is missing"
hash=$(sha256sum "$pom" | cut -c1-16)
dir="$cache/$hash"

have_jars() {
  [ -d "$dir" ] && compgen -G "$dir/$marker" >/dev/null
}

case "${1:-}" in
  --print-dir)
    echo "$PWD/$dir"
    have_jars || fail "no jars in $dir yet; run ./scripts/$name.sh"
    exit 0
    ;;
  "") ;;
  *) fail "unknown argument '$1' (usage: $0 [--print-dir])" ;;
esac

if have_jars; then
  exit 0
fi

command -v java >/dev/null 2>&1 \
  || fail "java not found; $what need a Java 17+ JDK (Debian: apt-get install openjdk-17-jdk-headless)"
command -v mvn >/dev/null 2>&1 \
  || fail "mvn not found; it is needed once to fetch $what (Debian: apt-get install maven)"

mkdir -p "$cache"
# Fetch into a directory of our own, then rename it into place: a directory that is there is
# complete, and concurrent runs cannot mix their files.
tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
log="$cache/last-fetch.log"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

echo "$name: fetching $what ($size) into $dir ..." >&2
if ! mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$PWD/$tmp" >"$log" 2>&1; then
  reason=$(sed -E 's/\x1b\[[0-9;]*m//g' "$log" | grep -m1 -E '^\[ERROR\] *[^ ]' \
    | sed -E 's/^\[ERROR\] *//; s/ -> \[Help 1\]$//' | cut -c1-300 || true)
  fail "could not fetch the jars with Maven (is Maven Central reachable?): ${reason:-no error message} (full log: $log)"
fi
compgen -G "$tmp/$marker" >/dev/null || fail "Maven copied no $marker (see $log)"

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
