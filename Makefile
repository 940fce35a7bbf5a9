# The two commands of the README. Both set up everything they need first (scripts/bootstrap).
.PHONY: sandbox test lint bootstrap bench

bootstrap:
	@scripts/bootstrap

sandbox: bootstrap
	.venv/bin/kubevirt-usb sandbox

lint: bootstrap
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

test: lint
	.venv/bin/pytest

bench: bootstrap
	.venv/bin/python -m bench apiserver
	.venv/bin/python -m bench sandbox
