# Convenience targets for developers; the scripts are what the README and CI use.
.PHONY: run test build build-test format clean

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

build:
	bash scripts/build.sh build

build-test:
	bash scripts/build.sh build-test -DENABLE_TEST_HOOKS=ON -DENABLE_WERROR=ON

format:
	clang-format -i $$(git ls-files --cached --others --exclude-standard '*.c' '*.h')

clean:
	rm -rf build build-test
