# gallra — the README's commands. Each installs what it needs on a fresh Debian machine.
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all build release test demo clean format

all: build

build:
	scripts/deps.sh
	swift build

release:
	scripts/deps.sh
	swift build -c release

test:
	scripts/test.sh

demo:
	scripts/demo.sh

format:
	swift format --in-place --recursive Package.swift Sources Tests

clean:
	rm -rf .build
