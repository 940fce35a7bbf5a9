# The two commands of the README. Both set up everything they need first (scripts/bootstrap).
.PHONY: sandbox test lint plugin bootstrap bench screenshots

bootstrap:
	@scripts/bootstrap

sandbox: bootstrap
	.venv/bin/kubevirt-usb sandbox

lint: bootstrap
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

# The console plugin (console-plugin/): type-check, ESLint, Prettier, jest, and the SDK's build
# (which validates console-extensions.json), with the Node that bootstrap put in .node.
plugin: bootstrap
	cd console-plugin && PATH="$(CURDIR)/console-plugin/.node/node_modules/.bin:$$PATH" npm run check

test: lint plugin
	.venv/bin/pytest

# Refresh the committed docs/screenshots/*.png on purpose (tests write theirs under pytest's
# temporary directory, or KUBEVIRT_USB_SCREENSHOTS=DIR). The console-*.png ones come only when
# the console e2e runs (KUBEVIRT_USB_TEST_CONSOLE...: see tests/e2e/test_console_e2e.py).
screenshots: bootstrap
	KUBEVIRT_USB_SCREENSHOTS="$(CURDIR)/docs/screenshots" .venv/bin/pytest \
		tests/web/test_browser.py tests/e2e/test_web_e2e.py tests/e2e/test_console_e2e.py

# Every benchmark docs/benchmarks.md cites (about 15 minutes, then the 30-minute chaos soak);
# each records its results in
# docs/benchmark-results.json. One alone: .venv/bin/python -m bench NAME --help
bench: bootstrap
	.venv/bin/python -m bench apiserver
	.venv/bin/python -m bench sandbox
	.venv/bin/python -m bench agents
	.venv/bin/python -m bench controller --selector serial --rate 100
	.venv/bin/python -m bench controller --selector model --rate 100
	.venv/bin/python -m bench controller --selector serial --rate 0
	.venv/bin/python -m bench controller --selector model --rate 0
	.venv/bin/python -m bench controller --sandbox
	.venv/bin/python -m bench datapath
	.venv/bin/python -m bench soak --minutes 30
