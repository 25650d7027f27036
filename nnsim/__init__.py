"""nnsim: a terminal laboratory for the optimization of deep networks."""

from nnsim.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
