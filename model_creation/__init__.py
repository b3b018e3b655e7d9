"""The model pipeline: scrape -> dataset -> train -> export -> quantize -> evaluate.

Each stage is a module with a `Config` dataclass and `run(config) -> Path`. A stage reads the
previous stage's output directory and writes one new directory holding a `metrics.json`.
"""

STAGES = ("scrape", "dataset", "train", "export", "quantize", "evaluate")
