# CrabCache front door. Targets:
#   make          release binaries in build/ (crabcache, crabcache-cli, crabcache-bench, crabcache-sim)
#   make run      build, then start build/crabcache on its embedded defaults
#   make test     install missing Debian packages, build with ASan+UBSan, run every test
#   make fuzz     build the libFuzzer targets with clang and run each for FUZZ_SECONDS
#   make fuzz-smoke  the same for FUZZ_SMOKE_SECONDS each (part of make test)
#   make bench    release build, then bench/compare (CrabCache against redis-server)
#   make install  install the binaries (PREFIX=/usr/local)

JOBS    ?= $(shell nproc)
PREFIX  ?= /usr/local
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5
CTEST_ARGS ?=

.PHONY: all run test unit fuzz fuzz-smoke fuzz-build bench deps install clean format

all:
	@cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DBIN_DIR=$(CURDIR)/build \
	    -DBUILD_TESTS=OFF >/dev/null
	@cmake --build build/release -j $(JOBS)

run: all
	./build/crabcache

deps:
	@./scripts/deps.sh

# The test build: Debug, AddressSanitizer + UBSan, warnings as errors.
build/asan/CMakeCache.txt:
	cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON -DWERROR=ON \
	    -DBIN_DIR=$(CURDIR)/build/asan/bin >/dev/null

# The fuzz smoke runs first so that ctest's summary is the last thing printed.
test: deps build/asan/CMakeCache.txt
	cmake --build build/asan -j $(JOBS)
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory fuzz-smoke
	cd build/asan && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

unit: build/asan/CMakeCache.txt
	cmake --build build/asan -j $(JOBS)
	cd build/asan && ctest --output-on-failure -L unit

# libFuzzer targets (tests/fuzz/fuzz_*.c), clang, ASan+UBSan; only the fuzzers are
# built. Crashes are copied to the current directory (tests/fuzz/run.sh).
fuzz-build: deps
	cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DFUZZ=ON \
	    -DBUILD_TESTS=OFF -DBIN_DIR=$(CURDIR)/build/fuzz/bin >/dev/null
	cmake --build build/fuzz -j $(JOBS) --target $$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$$//')

fuzz: fuzz-build
	./tests/fuzz/run.sh build/fuzz/bin $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	./tests/fuzz/run.sh build/fuzz/bin $(FUZZ_SMOKE_SECONDS)

bench: deps all
	./bench/compare

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 build/crabcache build/crabcache-cli build/crabcache-bench build/crabcache-sim \
	    $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/doc/crabcache \
	    $(DESTDIR)$(PREFIX)/share/crabcache
	sed 's#/usr/local#$(PREFIX)#g' packaging/crabcache.service \
	    > $(DESTDIR)$(PREFIX)/lib/systemd/system/crabcache.service
	install -m 644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/crabcache/
	install -m 644 config/default.toml $(DESTDIR)$(PREFIX)/share/crabcache/

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
