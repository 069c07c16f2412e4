# PageShare: `make serve` sets everything up and runs the main job on demo images; `make test` passes the tests.
# Missing Debian packages are installed with apt-get (only those `dpkg -s` reports missing).

SWIFT        ?= swift
DEB_PACKAGES := erofs-utils liblz4-dev libzstd-dev liblzma-dev zlib1g-dev libxxhash-dev
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO         := demo
FUZZ_SECONDS ?= 600
PAGESHARE    := .build/debug/pageshare

.PHONY: deps build test lint serve demo fuzz bench clean

deps:
	@missing=""; \
	for package in $(DEB_PACKAGES); do \
		dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

build: deps
	$(SWIFT) build

lint:
	$(SWIFT) format lint --strict -r Sources Tests Package.swift

test: deps lint
	$(SWIFT) build --build-tests
	$(SWIFT) test

# Until the HTTP server lands (issue #5), the main job is reading demo images: two versions of one tree
# built with Debian's mkfs.erofs, inspected and listed with the pageshare CLI, and read through one shared
# page cache to show what sharing saves.
demo: build
	@scripts/make-demo-images.sh $(DEMO)

serve: demo
	$(PAGESHARE) inspect $(DEMO)/app-v1.img
	$(PAGESHARE) ls -l $(DEMO)/app-v1.img /
	$(PAGESHARE) stat $(DEMO)/app-v2.img /lib/libdemo.so
	$(PAGESHARE) cat $(DEMO)/app-v2.img /etc/motd
	$(PAGESHARE) share-report $(DEMO)/app-v1.img $(DEMO)/app-v2.img
	@echo "pageshare: the HTTP daemon is not built yet (issue #5); shown above: the demo images it will serve."

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build
	@bench/extract.sh /usr/share 3
	@bench/extract.sh /usr/share 3 -zlz4hc -C65536
	@bench/extract.sh /usr/share 3 synthetic:zstd
	@bench/memory.sh /usr/share/doc

clean:
	rm -rf .build .build-fuzz $(DEMO) Fuzz/out
