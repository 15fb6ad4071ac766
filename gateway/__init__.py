"""Family-violence interoperability gateway."""
