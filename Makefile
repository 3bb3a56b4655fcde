# stackbox — build, test, install, fuzz, bench.
GO       ?= go
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
DESTDIR  ?=
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
FUZZTIME ?= 60s
BIN      := bin/stackbox
LDFLAGS  := -s -w -X main.version=$(VERSION)

.PHONY: all build run test test-deps vet fmt-check install uninstall fuzz bench clean

all: build

# A static binary: no cgo, so it runs in minimal containers.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/stackbox

# Shows it working without root: netd on the built-in simulated network
# and a few tools through it (scripts/demo.sh).
run: build
	scripts/demo.sh ./$(BIN)

# The test command (README, .ci/run). Installs the Debian packages the
# tests need when missing and run as root, checks formatting, vets, and runs
# every test with the race detector (interop tests need root; they skip
# with a message without it). Then the TCP bulk transfers against the
# kernel once more without -race (under it our stack moves ~5-15 MB/s, too
# slow for this), with 1 GiB each way instead of the -race run's 64 MiB.
test: test-deps fmt-check vet
	$(GO) test -race -count=1 -timeout 20m ./...
	STACKBOX_TCP_INTEROP_BYTES=1GiB $(GO) test -count=1 -timeout 10m -run '^TestKernelBulk' -v ./pkg/tcp

test-deps:
	@scripts/test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# One symlink per applet, as busybox --install does.
install: build
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/stackbox
	@for a in $$(./$(BIN) --list); do ln -sf stackbox $(DESTDIR)$(BINDIR)/$$a; echo "  $(BINDIR)/$$a -> stackbox"; done

uninstall:
	@for a in $$(./$(BIN) --list 2>/dev/null); do \
		[ -L $(DESTDIR)$(BINDIR)/$$a ] && rm -f $(DESTDIR)$(BINDIR)/$$a; done; \
	rm -f $(DESTDIR)$(BINDIR)/stackbox

# Every fuzz target for FUZZTIME each: make fuzz FUZZTIME=10m
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
	$(GO) clean -testcache
