# The two set-up commands of README.md. Each installs what it needs.
.PHONY: serve test bench

serve:
	./scripts/bootstrap.sh
	.venv/bin/gateway serve

test:
	./scripts/test.sh

bench:
	./scripts/bootstrap.sh
	.venv/bin/python bench/fhir_store.py
