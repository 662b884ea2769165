"""moe-companion: the executable companion to *Robustness of Mixtures of Experts to Feature Noise*.

Importing :mod:`moe_companion.figures` (every chapter module does) registers the ``moe_book`` plotly
renderer (HTML div + plotly JSON) as the default, so figures render both in the built book and in
JupyterLab. The package itself stays light to import (the command line's pre-flight checks need no plotly).
"""

from .model import BlockModel, BlockSample

__version__ = "0.1.0"
__all__ = ["BlockModel", "BlockSample", "__version__"]
