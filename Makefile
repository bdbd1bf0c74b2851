# The README's two commands: `make demo` and `make test`. Both bootstrap .venv on first use.
PY     := .venv/bin/python
STAMP  := .venv/.hardyt-installed
JOBS   ?= 2

.PHONY: demo test bench install clean

demo: $(STAMP)
	.venv/bin/hardyt demo

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q -m "not slow" tests

install: $(STAMP)

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	@touch $@

bench: $(STAMP)
	$(PY) bench/tanh_error.py
	$(PY) bench/accuracy.py
	$(PY) bench/verify_speed.py
	$(PY) bench/hardware.py --jobs $(JOBS)

clean:
	rm -rf .venv out sim_build
