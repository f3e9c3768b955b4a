"""COPA in lm-eval's copa format: 'premise without its period' + because/therefore, choices
lower-cased at the first letter with a leading space (lm-eval then adds its own " " delimiter)."""

from sinkbench.data.tasks import copa as load  # noqa: F401

CONNECTOR = {"cause": "because", "effect": "therefore"}


def _lower_first(text):
    return text[0].lower() + text[1:]


def doc_to_text(doc):
    return doc["premise"].strip()[:-1] + " " + CONNECTOR[doc["question"]]


def doc_to_choice(doc):
    return [" " + _lower_first(doc["choice1"]), " " + _lower_first(doc["choice2"])]


def doc_to_target(doc):
    return doc_to_choice(doc)[doc["label"]]
