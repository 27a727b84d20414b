"""Networks: loading users' models by name or path, and small built-in networks."""

from nnjoules.models.loading import LoadedModel as LoadedModel
from nnjoules.models.loading import load_model as load_model

__all__ = ["LoadedModel", "load_model"]
