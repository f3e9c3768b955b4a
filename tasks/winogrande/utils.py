"""Winogrande with partial scoring, as lm-eval's winogrande: each option fills the blank in its own
context, and the shared continuation after the blank is scored."""

from sinkbench.data.tasks import winogrande as load  # noqa: F401


def doc_to_text(doc):
    return int(doc["label"])  # an int tells lm-eval the choices are contexts (multiple inputs)


def doc_to_choice(doc):
    return list(doc["contexts"])


def doc_to_target(doc):
    return doc["continuation"]
