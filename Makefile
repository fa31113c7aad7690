# The two commands of the README: `make run` and `make test`.
GO ?= go
BIN := bin/hotline

.PHONY: run test build vet bench clean

run: build
	deploy/install-deps.sh run
	$(BIN) up

build:
	$(GO) build -o $(BIN) ./cmd/hotline

# Every test, against real PostgreSQL, Redis, SIP peers and Chromium that the tests start themselves.
test:
	deploy/install-deps.sh test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 14m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

clean:
	rm -rf bin
