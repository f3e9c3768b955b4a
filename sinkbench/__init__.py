"""sinkbench: measure how much a language model leans on its attention sink, and what breaks without it."""

__version__ = "0.1.0"

from sinkbench.errors import SinkbenchError

__all__ = ["SinkbenchError", "__version__"]
