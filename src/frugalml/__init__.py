"""frugalml: measure what deep learning costs and shrink it.

Importing the package is cheap on purpose: sub-packages import torch themselves, so the
`frugal` command can answer `--help` without loading it.
"""

__version__ = "0.1.0"
