"""Figures: a matplotlib backend that saves every figure a block shows (and those still open
when it ends) as PNG into the scratch directory, and their collection for the reply, bounded
in number and size."""

import base64
import os
import stat
import struct
import sys

from runner_config import FIGURE_DIR, MAX_FIGURES, MAX_FIGURE_BYTES, MAX_FIGURE_PIXELS, SCRATCH

# --- Figures -----------------------------------------------------------------------------------

INLINE_BACKEND = "start_inline"


class InlineBackend:
    """A matplotlib backend (module://start_inline) that saves every figure as PNG into the
    scratch directory's FIGURE_DIR at plt.show(), as a notebook shows it, and closes it. Made
    on import by a finder, so a block that never draws pays nothing."""

    saved = 0

    def find_spec(self, name, path=None, target=None):  # importlib's MetaPathFinder
        if name != INLINE_BACKEND:
            return None
        import importlib.util
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        from matplotlib.backend_bases import FigureManagerBase
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        module.FigureCanvas = FigureCanvasAgg
        module.FigureManager = FigureManagerBase
        module.show = lambda *args, **kwargs: InlineBackend.flush()

    @staticmethod
    def flush():
        """Saves and closes every open figure."""
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return
        out = os.path.join(SCRATCH, FIGURE_DIR)
        os.makedirs(out, exist_ok=True)
        for num in plt.get_fignums():
            fig = plt.figure(num)
            w, h = fig.get_size_inches()
            dpi = min(fig.dpi, (MAX_FIGURE_PIXELS / max(w * h, 1e-6)) ** 0.5)
            InlineBackend.saved += 1
            fig.savefig(os.path.join(out, "fig-%04d.png" % InlineBackend.saved), format="png",
                        dpi=dpi)
        plt.close("all")


def install_inline_backend():
    """In the fork server, once, after the preload: figures drawn in its children are captured
    (see InlineBackend). The finder and a preloaded pyplot's backend are inherited by every
    child, so a block pays nothing for them; a child that imports pyplot itself finds the
    backend through MPLBACKEND (child_env)."""
    sys.meta_path.insert(0, InlineBackend())
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.switch_backend("module://" + INLINE_BACKEND)
        except Exception:  # noqa: BLE001 - a block that draws will say what is wrong
            pass


def png_size(head):
    """(width, height) of a PNG from its first 24 bytes, or None when it is not one."""
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def collect_figures():
    """The figures a block saved (its FIGURE_DIR, in order): at most MAX_FIGURES regular PNG
    files of at most MAX_FIGURE_BYTES; returns (figures, how many more were left out)."""
    d = os.path.join(SCRATCH, FIGURE_DIR)
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return [], 0
    figures, dropped = [], 0
    for name in names:
        if len(figures) == MAX_FIGURES:
            dropped += 1
            continue
        try:
            # No symlinks, no FIFOs: a block could plant either to hang or fool the runner.
            fd = os.open(os.path.join(d, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            dropped += 1
            continue
        try:
            st = os.fstat(fd)
            data = os.read(fd, MAX_FIGURE_BYTES + 1) if stat.S_ISREG(st.st_mode) else b""
        finally:
            os.close(fd)
        size = png_size(data[:24])
        if size is None or len(data) > MAX_FIGURE_BYTES:
            dropped += 1
            continue
        figures.append({"png": base64.b64encode(data).decode("ascii"),
                        "width": size[0], "height": size[1]})
    return figures, dropped
