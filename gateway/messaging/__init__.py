"""Messages between agencies: FHIR message Bundles, the transactional outbox that relays them,
the processor that handles what agencies send, and the dead letters it could not handle."""
