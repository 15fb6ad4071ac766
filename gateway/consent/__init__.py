"""The consent-threshold engine: jurisdiction policies as data, a decision per information item."""
