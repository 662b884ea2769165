"""moe-companion: the executable companion to *Robustness of Mixtures of Experts to Feature Noise*.

Importing the package registers the ``moe_book`` plotly renderer (HTML div + plotly JSON)
as the default, so figures render both in the built book and in JupyterLab.
"""
from .figures import register_renderer
from .model import BlockModel, BlockSample

__version__ = "0.1.0"
__all__ = ["BlockModel", "BlockSample", "__version__"]

register_renderer()
