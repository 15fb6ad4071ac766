#!/usr/bin/env bash
# The jars of the HAPI FHIR instance validator (tools/hapi-validator/Validate.java, used by
# tests/support/hapi.py), in .cache/hapi-validator/<hash of pom.xml>/.
#   ./scripts/ensure-hapi-validator.sh              fetch the jars if needed
#   ./scripts/ensure-hapi-validator.sh --print-dir  print the jar directory; exit 1 if not there yet
exec "$(dirname "$0")/fetch-maven-jars.sh" ensure-hapi-validator tools/hapi-validator/pom.xml .cache/hapi-validator \
  'hapi-fhir-validation-*.jar' "the HAPI FHIR validator jars" "about 140 MB" "$@"
