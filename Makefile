# Two commands a new machine needs: `make demo` and `make test` (both create .venv and install).
VENV   := .venv
PY     := $(VENV)/bin/python
# The torch/torchvision pair that installs from this machine's local disk (see README, "Installing");
# pyproject.toml keeps them as ranges so users elsewhere resolve them normally.
TORCH  := torch==2.14.1 torchvision==0.29.1
XVFB   := xvfb-run -a -s "-screen 0 1600x1000x24"

.PHONY: install xvfb demo test bench-quick lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[testing]"
	touch $@

install: $(VENV)/.installed

# Xvfb plus the X/GL libraries Qt's xcb platform plugin loads (a bare Debian lacks some of them).
QT_DEBS := xvfb xauth libgl1 libegl1 libfontconfig1 libdbus-1-3 libglib2.0-0 libxkbcommon-x11-0 \
	libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xkb1 \
	libxcb-cursor0 libxcb-shape0
xvfb:
	@dpkg -s $(QT_DEBS) >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $(QT_DEBS))

# The napari window with the plugin where a display exists, else the headless end-to-end demo.
demo: install
	@if [ -n "$$DISPLAY" ] || [ -n "$$WAYLAND_DISPLAY" ]; then \
		$(VENV)/bin/napari -w napari-pixrel; \
	else \
		$(VENV)/bin/pixrel demo; \
	fi

# Napari viewers need an X server for OpenGL (offscreen alone is not enough): run under Xvfb.
# pytest's exit code 5 (no tests collected) is turned into a failure on purpose.
test: install xvfb
	QT_QPA_PLATFORM= $(XVFB) $(PY) -m pytest -q -p no:cacheprovider --durations=15; \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

bench-quick: install
	$(VENV)/bin/pixrel bench --quick

lint: install
	$(VENV)/bin/ruff check napari_pixrel tests benchmarks
