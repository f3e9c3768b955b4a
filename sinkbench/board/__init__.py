"""The leaderboard: submitted records in, tables, pages, plots, release tracking and comparisons out.

Reads records only; never imports torch, transformers or lm-eval (a test checks). The parts:

* store.py       where submissions live, what a submission must pass, `submit`
* ranks.py       rank bands from the suite score's intervals (Chatbot Arena's rule)
* table.py       the board's rows (a record and its rank band), ranked; their Markdown and CSV views
* boardjson.py   board.json, checked against schema/board.schema.json
* curves.py      the numbers the charts draw, read out of a record, each with its interval
* svg.py         small, deterministic SVG charts (axes, lines and points with error bars, legends)
* heatmap.py     layer x head heatmaps, colour bars, the α difference of two records (and `probe`'s heatmap)
* plots.py       the board's one line chart; the index's charts: one line per record of a suite
* recordplots.py a model page's charts
* pages.py       what a model page shows (site/models/<family>/<model>/<revision>.html)
* site.py        the static pages (Jinja2 with autoescape, templates/)
* cache.py       work done once per content: a record file checked once, a page drawn once
* build.py       `board build`: every output from the submissions, byte-identical on rebuild
* review.py      `board review`: a change's records checked, the board rebuilt, Markdown for a pull request
* comparison.py  `board compare`: sinkbench.record.compare's paired changes and verdicts, printed
* track.py       `board track`: a family's releases, each against the one before it
* export.py      the summary columns as Hugging Face model-index YAML
* tidy.py        `board export --tidy`: every per-document outcome in long form (CSV, Parquet)
* cli.py         `sinkbench submit`, `sinkbench board build|review|track|compare|export`, `sinkbench export`
"""
