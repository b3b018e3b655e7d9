"""Export stage: the trained HF model directory -> `model.onnx`, a decoder with a KV cache.

optimum's exporter (task text-generation-with-past) writes the graph, config.json and
generation_config.json; we then store the tied embedding once (see onnx_graph/tied_weights),
add the optional `logits_start` input that lets serving run the LM head on the last position
only (see onnx_graph/logits_start), make sure the tokenizer files are beside the model, and
check the ONNX graph against the PyTorch model it came from: largest absolute logit difference and
identical greedy tokens for a few prompts. A failed logit check stops the stage, since every later
stage would inherit the bug.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from model_creation.onnx_graph.decoder import OnnxDecoder
from model_creation.onnx_graph.logits_start import add_logits_start
from model_creation.onnx_graph.tied_weights import initializer_bytes, share_tied_embedding
from model_creation.stage_dir import StageError, prepare_output_dir, require_finished, write_metrics
from model_creation.tokenizer import TOKENIZER_FILES, end_of_text_id, load_tokenizer, save_tokenizer

DEFAULT_PROMPTS = [
    "We propose a method to",
    "Deep neural networks have achieved remarkable success in",
    "In this paper, we study the problem of",
    "Graph neural networks",
]


@dataclass
class Config:
    input_dir: str = "runs/train"  # the train stage's HF model directory
    output_dir: str = "runs/export"  # gets model.onnx + config, tokenizer and generation files
    overwrite: bool = False  # replace a finished run in output_dir
    opset: int | None = None  # ONNX opset; None lets optimum pick the architecture's default
    parity_prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))
    parity_new_tokens: int = 8  # greedy tokens compared between PyTorch and ONNX per prompt
    max_logit_diff: float = 1e-3  # largest |logit_onnx - logit_torch| accepted on the prompts


def _export_graph(config: Config, out: Path) -> None:
    from optimum.exporters.onnx import main_export

    # do_validation=False: our own parity check below also covers greedy decoding with the cache.
    # no_post_process=True: with `accelerate` installed (as on Colab) optimum would tie the
    # embedding by feeding the LM head a runtime Transpose of wte, which int8 quantization cannot
    # touch; share_tied_embedding does it in a quantizable way on every machine alike.
    main_export(
        str(config.input_dir),
        out,
        task="text-generation-with-past",
        opset=config.opset,
        do_validation=False,
        no_post_process=True,
        local_files_only=True,
    )


def _ensure_side_files(input_dir: Path, out: Path) -> None:
    """The model's own tokenizer (GPT-2's if the HF dir has none) and a generation config
    beside the graph, whatever optimum happened to copy."""
    tokenizer = load_tokenizer(input_dir) if (input_dir / "tokenizer.json").exists() else None
    if tokenizer is not None or not all((out / name).exists() for name in TOKENIZER_FILES):
        save_tokenizer(out, tokenizer)
    if not (out / "generation_config.json").exists():
        from transformers import GenerationConfig

        eos = end_of_text_id(load_tokenizer(out))
        GenerationConfig(bos_token_id=eos, eos_token_id=eos).save_pretrained(out)


def check_parity(hf_dir: Path, onnx_path: Path, prompts: list[str], new_tokens: int) -> dict:
    """Compare the ONNX decoder with the PyTorch model on `prompts` (logits, then greedy tokens)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import GenerationConfig, GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(hf_dir).eval()
    tokenizer = Tokenizer.from_file(str(onnx_path.parent / "tokenizer.json"))
    decoder = OnnxDecoder(onnx_path)
    eos = end_of_text_id(tokenizer)
    cases = []
    for prompt in prompts:
        # As in training and serving: a document starts after <|endoftext|>.
        ids = [eos] + tokenizer.encode(prompt, add_special_tokens=False).ids
        with torch.no_grad():
            input_ids = torch.tensor([ids])
            reference = model(input_ids).logits[0].numpy()  # [seq, vocab]
            # Greedy, as the model's own config: the trained model's generation_config.json samples,
            # and generate() fills a passed config's default-valued fields (do_sample=False among
            # them) from the model's, so passing a greedy config would still sample.
            model.generation_config = GenerationConfig(
                max_new_tokens=new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=eos
            )
            expected = model.generate(input_ids, attention_mask=torch.ones_like(input_ids))[0, len(ids) :].tolist()
        got = decoder.greedy(ids, new_tokens)[: len(expected)]  # generate stops early at <|endoftext|>
        cases.append(
            {
                "prompt": prompt,
                "max_abs_logit_diff": float(np.abs(decoder.logits(ids) - reference).max()),
                "torch_greedy": expected,
                "onnx_greedy": got,
                "greedy_match": got == expected,
            }
        )
    return {
        "max_abs_logit_diff": max(c["max_abs_logit_diff"] for c in cases),
        "greedy_match": all(c["greedy_match"] for c in cases),
        "cases": cases,
    }


def run(config: Config) -> Path:
    input_dir = require_finished(Path(config.input_dir), "train")
    out = prepare_output_dir(Path(config.output_dir), config.overwrite)
    start = time.perf_counter()
    _export_graph(config, out)
    model_path = out / "model.onnx"
    graph = onnx.load(model_path)
    exported_bytes = initializer_bytes(graph)
    saved = share_tied_embedding(graph)
    add_logits_start(graph)
    onnx.save(graph, model_path)
    _ensure_side_files(input_dir, out)
    export_seconds = time.perf_counter() - start

    parity = check_parity(input_dir, model_path, config.parity_prompts, config.parity_new_tokens)
    if parity["max_abs_logit_diff"] > config.max_logit_diff:
        raise StageError(
            f"ONNX logits differ from PyTorch by {parity['max_abs_logit_diff']:.3g} "
            f"(max_logit_diff is {config.max_logit_diff}); the export is wrong"
        )
    write_metrics(
        out,
        {
            "stage": "export",
            "input_dir": str(input_dir.resolve()),
            "config": dataclasses.asdict(config),
            "onnx_size_bytes": model_path.stat().st_size,
            "initializer_bytes": initializer_bytes(graph),
            "initializer_bytes_before_dedupe": exported_bytes,
            "tied_embedding_bytes_saved": saved,
            "inputs": [i.name for i in graph.graph.input],
            "outputs": [o.name for o in graph.graph.output],
            "opset": max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")),
            "export_seconds": export_seconds,
            "parity": parity,
        },
    )
    return out
