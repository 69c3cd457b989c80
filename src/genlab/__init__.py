"""genlab: train, evaluate and compare deep generative models of images.

The Python API lives in :mod:`genlab.api`; the command line is ``genlab`` (:mod:`genlab.cli`).
"""

__version__ = "0.1.0"
