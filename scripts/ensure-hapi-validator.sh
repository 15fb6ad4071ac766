#!/usr/bin/env bash
# Makes sure the jars of the HAPI FHIR instance validator (tools/hapi-validator/Validate.java,
# used by tests/support/hapi.py) are in .cache/hapi-validator/<hash of pom.xml>/, gathering
# them with Maven from tools/hapi-validator/pom.xml when they are not. Needs Java 17+ and
# Maven; after the first run nothing needs the network (the jars are the class path).
# Silent when the jars are already there; otherwise progress and errors go to stderr.
#
#   ./scripts/ensure-hapi-validator.sh              fetch the jars if needed
#   ./scripts/ensure-hapi-validator.sh --print-dir  print the jar directory (absolute) and
#       exit 0 if the jars are there, 1 if not (nothing is fetched)
set -euo pipefail
cd "$(dirname "$0")/.."

name=ensure-hapi-validator
pom=tools/hapi-validator/pom.xml
cache=.cache/hapi-validator

fail() {
  echo "$name: $*" >&2
  exit 1
}

[ -f "$pom" ] || fail "$pom is missing"
hash=$(sha256sum "$pom" | cut -c1-16)
dir="$cache/$hash"

have_jars() {
  [ -d "$dir" ] && compgen -G "$dir/*.jar" >/dev/null
}

case "${1:-}" in
  --print-dir)
    echo "$PWD/$dir"
    have_jars || fail "no jars in $dir yet; run ./scripts/ensure-hapi-validator.sh"
    exit 0
    ;;
  "") ;;
  *) fail "unknown argument '$1' (usage: $0 [--print-dir])" ;;
esac

if have_jars; then
  exit 0
fi

command -v java >/dev/null 2>&1 \
  || fail "java not found; the FHIR validator needs a Java 17+ JDK (Debian: apt-get install openjdk-17-jdk-headless)"
command -v mvn >/dev/null 2>&1 \
  || fail "mvn not found; it is needed once to fetch the FHIR validator jars (Debian: apt-get install maven)"

mkdir -p "$cache"
# Fetch into a directory of our own, then rename it into place: a directory that is there is
# complete, and concurrent runs cannot mix their files.
tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
log="$cache/last-fetch.log"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

echo "$name: fetching the HAPI FHIR validator jars (about 140 MB) into $dir ..." >&2
if ! mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$PWD/$tmp" >"$log" 2>&1; then
  reason=$(sed -E 's/\x1b\[[0-9;]*m//g' "$log" | grep -m1 -E '^\[ERROR\] *[^ ]' \
    | sed -E 's/^\[ERROR\] *//; s/ -> \[Help 1\]$//' | cut -c1-300 || true)
  fail "could not fetch the jars with Maven (is Maven Central reachable?): ${reason:-no error message} (full log: $log)"
fi
compgen -G "$tmp/*.jar" >/dev/null || fail "Maven copied no jars (see $log)"

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
