#!/usr/bin/env bash
# The jars of the Apache Kafka broker the integration tests start (tests/support/kafka.py;
# versions in tools/kafka-broker/pom.xml), in .cache/kafka/<hash of pom.xml>/.
#   ./scripts/ensure-kafka.sh              fetch the jars if needed
#   ./scripts/ensure-kafka.sh --print-dir  print the jar directory; exit 1 if not there yet
exec "$(dirname "$0")/fetch-maven-jars.sh" ensure-kafka tools/kafka-broker/pom.xml .cache/kafka \
  'kafka_2.13-*.jar' "the Kafka broker jars" "about 45 MB" "$@"
