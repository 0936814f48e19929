"""Load torch's optional triton so that it cannot crash napari; the package imports this first.

napari creates its OpenGL context before a plugin's dock is imported. Under
Mesa's software renderer (llvmpipe: Xvfb, virtual machines, remote desktops)
that context loads the system libLLVM, and importing triton afterwards (CUDA
builds of torch pull it in through torchvision -> torch._dynamo) segfaults in
its LLVM initialisers. Loading triton with RTLD_DEEPBIND makes it bind its own
LLVM symbols first. Nothing happens without triton, where it is already loaded,
or where no libLLVM is in the process yet (CLI, notebooks, GPU servers).
"""

from __future__ import annotations

import importlib.util
import os
import sys


def _llvm_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return "libLLVM" in maps.read()
    except OSError:
        return False


def load_triton_isolated() -> None:
    loaded_or_absent = "triton" in sys.modules or importlib.util.find_spec("triton") is None
    if loaded_or_absent or not hasattr(os, "RTLD_DEEPBIND") or not _llvm_loaded():
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        import triton  # noqa: F401
    finally:
        sys.setdlopenflags(flags)


load_triton_isolated()
