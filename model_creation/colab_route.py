"""Which training route the Colab notebooks take.

Where the Hugging Face Hub is reachable (Colab), the product fine-tunes pretrained DistilGPT2:
minutes of GPU time for a model far better than any from-scratch run. Where it is not, the
notebooks fall back to training DistilGPT2's shape from scratch, and say so.
"""

from __future__ import annotations

FINETUNE_PRESET = "distilgpt2-finetune"
SCRATCH_PRESET = "distilgpt2-arxiv"


def choose_training_preset(base: str = "distilgpt2") -> tuple[str, str]:
    """(preset name, a sentence for the user): fine-tuning if `base` (a Hub name or a local
    folder) can be loaded, else the from-scratch recipe."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(base)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return SCRATCH_PRESET, (
            f"Could not load the pretrained model {base!r} ({first_line}). Falling back to the from-scratch "
            f"preset {SCRATCH_PRESET!r}: DistilGPT2's shape trained from random weights, slower and weaker. "
            f"Check that this runtime can reach the Hugging Face Hub to fine-tune instead."
        )
    return FINETUNE_PRESET, f"Fine-tuning the pretrained model {base!r} with the {FINETUNE_PRESET!r} preset."
