"""The disclosure ledger: AuditEvents for every release and refusal, chained, signed, verifiable."""
