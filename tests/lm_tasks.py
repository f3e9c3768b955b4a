"""Tiny lm-eval tasks of every request type, written into a folder at test time."""

import json
from pathlib import Path

CLOZE = [
    {"context": "the cat sat on the", "target": "house"},
    {"context": "the dog ran to the", "target": "river"},
    {"context": "she saw a big", "target": "fish"},
    {"context": "", "target": "the king"},
]
CHOICE = [
    {"question": "the sun is", "choices": ["big", "small", "red blue"], "label": 0},
    {"question": "the moon was", "choices": ["old", "new"], "label": 1},
    {"question": "a bird in the", "choices": ["tree", "river", "city"], "label": 0},
]
TEXTS = [{"text": "the king and the queen went to the city . " * 6}, {"text": "a small bird sat on a tree ."}]
GENERATE = [{"context": "the cat sat on the", "target": "house"}, {"context": "remember the key", "target": "5"}]

YAML = {
    "tiny_cloze": ("cloze", "output_type: loglikelihood\ndoc_to_text: \"{{context}}\"\ndoc_to_target: \" {{target}}\"\n"
                   "metric_list:\n  - metric: acc\n  - metric: perplexity\n"),
    "tiny_choice": ("choice", "output_type: multiple_choice\ndoc_to_text: \"{{question}}\"\ndoc_to_choice: \"{{choices}}\"\n"
                    "doc_to_target: \"{{label}}\"\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n"),
    "tiny_rolling": ("texts", "output_type: loglikelihood_rolling\ndoc_to_text: \"\"\ndoc_to_target: \"{{text}}\"\n"
                     "metric_list:\n  - metric: word_perplexity\n  - metric: bits_per_byte\n"),
    "tiny_generate": ("generate", "output_type: generate_until\ndoc_to_text: \"{{context}}\"\ndoc_to_target: \" {{target}}\"\n"
                      "generation_kwargs:\n  until: [\".\"]\n  max_gen_toks: 3\n  do_sample: false\n"
                      "metric_list:\n  - metric: exact_match\n"),
}


def write_tasks(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in {"cloze": CLOZE, "choice": CHOICE, "texts": TEXTS, "generate": GENERATE}.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for task, (data, body) in YAML.items():
        header = (f"task: {task}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {folder / (data + '.jsonl')}\n"
                  "test_split: test\nmetadata:\n  version: 1.0\n")
        (folder / f"{task}.yaml").write_text(header + body)
    return folder
