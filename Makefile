# PageShare: `make serve` sets everything up and runs the main job on demo images; `make test` passes the tests.
# Missing Debian packages are installed with apt-get (only those `dpkg -s` reports missing).

SWIFT        ?= swift
# What building and serving need (mkfs.erofs makes the demo images); the test tools come with `make test`.
DEB_PACKAGES := erofs-utils liblz4-dev libzstd-dev liblzma-dev zlib1g-dev libxxhash-dev libnghttp2-dev curl
TEST_PACKAGES := openssl shellcheck yamllint systemd python3-pip python3-h2 prometheus util-linux man-db
BENCH_PACKAGES := nginx h2o nghttp2-client
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO         := demo
FUZZ_SECONDS ?= 600
PAGESHARE    := .build/debug/pageshare

# `make install`: the binary, man pages generated from the command definitions, shell completions, the
# systemd units and the example configuration, under DESTDIR + PREFIX.
PREFIX        ?= /usr/local
DESTDIR       ?=
CONFIGURATION ?= release

.PHONY: deps build test lint check-deploy check-api check-install install serve demo fuzz bench clean

deps:
	@missing=""; \
	for package in $(DEB_PACKAGES) $(EXTRA_PACKAGES); do \
		dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

build: deps
	$(SWIFT) build

lint:
	$(SWIFT) format lint --strict -r Sources Tests Plugins Package.swift

test: EXTRA_PACKAGES = $(TEST_PACKAGES)
test: deps lint
	$(SWIFT) build --build-tests
	$(SWIFT) test
	$(MAKE) check-deploy
	$(MAKE) check-api
	$(MAKE) check-install

install: deps
	$(SWIFT) build -c $(CONFIGURATION) --product pageshare
	scripts/install.sh "$$($(SWIFT) build -c $(CONFIGURATION) --show-bin-path)/pageshare" "$(DESTDIR)" "$(PREFIX)" \
		$(CONFIGURATION)

# `make install` into a temporary DESTDIR (the debug build make test made): every file in place, the
# binary's --version, `man` rendering each page, the completion scripts parsing, the units naming the binary.
check-install:
	scripts/check-install.sh

# systemd-analyze, kubernetes-validate (PyPI), yamllint, shellcheck and JSON on deploy/ and the scripts.
check-deploy: build
	@python3 -c 'import kubernetes_validate' 2>/dev/null || python3 -m pip install -q kubernetes-validate \
		|| python3 -m pip install -q --break-system-packages kubernetes-validate
	deploy/check.sh $(PAGESHARE)

# The OpenAPI contract: openapi-spec-validator, then schemathesis (bounded, fixed seed) against the daemon.
API_EXAMPLES ?= 50

check-api: build
	@python3 -c 'import schemathesis, openapi_spec_validator' 2>/dev/null \
		|| python3 -m pip install -q schemathesis openapi-spec-validator \
		|| python3 -m pip install -q --break-system-packages schemathesis openapi-spec-validator
	scripts/api-conformance.sh $(PAGESHARE) $(API_EXAMPLES)

# The main job: the daemon on 127.0.0.1:8480 (and a unix socket under demo/) serving two demo images built
# with Debian's mkfs.erofs, attached to one fingerprint domain so that their shared library is cached once.
LISTEN ?= 127.0.0.1:8480

demo: build
	@scripts/make-demo-images.sh $(DEMO)

serve: demo
	@echo "pageshare: serving demo/app-v1.img and demo/app-v2.img on http://$(LISTEN) (Ctrl-C stops). Try:"
	@echo "  curl http://$(LISTEN)/v1/images/app-v1/files/etc/motd"
	@echo "  curl --http2-prior-knowledge -r 0-15 http://$(LISTEN)/v1/images/app-v2/files/lib/libdemo.so | od -c"
	@echo "  curl http://$(LISTEN)/v1/images/app-v2/dirs/ ; curl http://$(LISTEN)/v1/images/app-v1/stat/bin/libdemo-link"
	@echo "  $(PAGESHARE) admin list --server $(LISTEN) ; $(PAGESHARE) admin stats --server $(LISTEN)"
	exec $(PAGESHARE) serve --listen $(LISTEN) --unix-socket $(DEMO)/pageshare.sock --cache-size 256MiB \
		--image app-v1=$(DEMO)/app-v1.img@demo --image app-v2=$(DEMO)/app-v2.img@demo

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench: EXTRA_PACKAGES = $(BENCH_PACKAGES)
bench: deps build
	@bench/http.sh
	@bench/extract.sh /usr/share 3
	@bench/extract.sh /usr/share 3 -zlz4hc -C65536
	@bench/extract.sh /usr/share 3 synthetic:zstd
	@bench/memory.sh /usr/share/doc

clean:
	rm -rf .build .build-fuzz $(DEMO) Fuzz/out
