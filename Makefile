# Shortcuts; the README's two commands are deploy/up.sh and deploy/test.sh (make is not needed).
GO ?= go

.PHONY: run test build bench clean

run:
	deploy/up.sh

test:
	deploy/test.sh

build:
	$(GO) build -o bin/hotline ./cmd/hotline

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

clean:
	rm -rf bin
