# The README's commands. Each installs what it needs first (scripts/setup.sh).
#
#   make demo    build, then train LeNet on Fashion-MNIST for one epoch and evaluate it
#   make test    build and run every test, then again under ASan + UBSan
#   make build   just build (build/)
#   make install PREFIX=/usr/local
#   make clean

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
PREFIX     ?= /usr/local

.PHONY: all build demo test test-fast test-asan install clean

all: build

build:
	@scripts/setup.sh $(BUILD)
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/bin/dkhost configs/fashion_mnist/lenet.yaml --work-dir work_dirs/demo \
	    --cfg-options train_cfg.max_epochs=1

# Every test, in the normal build and in the sanitizer build.
test: test-fast test-asan

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan:
	@scripts/setup.sh $(ASAN_BUILD) -DDK_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DDK_CUDA=OFF
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
