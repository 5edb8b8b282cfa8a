# Shortcuts for ./dev (which needs nothing but python3).
.PHONY: serve test bench lint
serve:
	./dev serve
test:
	./dev test
bench:
	./dev bench
lint:
	./dev lint
