"""sinkbench: measure how much a language model leans on its attention sink, and what breaks without it."""

__version__ = "0.1.0"

from sinkbench.errors import SinkbenchError

__all__ = ["SinkbenchError", "__version__"]

BACKEND = "sinkbench.harness.backend:SinkbenchLM"  # what `--model sinkbench` resolves to


def _register_backend() -> None:
    """Make `sinkbench` an lm-eval model name without importing torch: lm-eval's registry takes a
    "module:Class" placeholder and imports it on first use. backend.py's @register_model then
    upgrades the placeholder to the class itself (lm-eval allows exactly that)."""
    try:
        from lm_eval.api.registry import model_registry
        import lm_eval.models  # noqa: F401  registers lm-eval's own placeholders (hf, ...) first
    except ImportError:  # lm-eval missing or broken: sinkbench's own commands still work
        return
    # get_model() indexes lm-eval's models only while the registry is empty, so they must be in
    # before ours. An existing entry (the class, after backend.py was imported, or someone's own
    # "sinkbench") is left alone: registering over it raises in lm-eval.
    if "sinkbench" not in model_registry:
        model_registry.register("sinkbench", target=BACKEND)


_register_backend()
