"""`bookmix demo`: a whole campaign on a generated storyworld library, sized for the machine it runs on.

On a CPU it runs ``examples/demo.yaml`` as written (a nano model, ≥ 24 trials with replicates, a few minutes on two
cores). On a GPU it runs bigger by default: more books, more recipes and a longer read of each, which a GPU
finishes in about the same time.
"""

from __future__ import annotations

from pathlib import Path

from bookmix.campaign.runner import CampaignSummary, run_campaign
from bookmix.config import PipelineConfig, load_pipeline
from bookmix.errors import BookmixError

DEMO_YAML = Path(__file__).resolve().parents[3] / "examples" / "demo.yaml"


def gpu_sized(cfg: PipelineConfig) -> PipelineConfig:
    """The demo scaled for a GPU: 4× the books (each 4× longer) and recipes, twice the books per recipe, the
    ``micro`` preset (10.7M parameters) at its own shape, one worker per GPU."""
    data = cfg.model_dump(mode="python")
    sw = data["library"]["storyworld"]
    sw["books"] = sw["books"] * 4
    sw["options"]["tokens_per_book"] = int(sw["options"].get("tokens_per_book", 8000)) * 4
    data["library"]["tokenizer"] = "train:4096"
    for d in data["search"]["designs"]:
        d["n"] = int(d.get("n", 1)) * 4
        if "books_per_set" in d:
            d["books_per_set"] = int(d["books_per_set"]) * 2
    data["model"] = {"preset": "micro", "overrides": {}, "hf_base": None}
    data["train"]["micro_batch"] = 32
    data["executor"]["workers"] = None
    out = PipelineConfig.model_validate(data)
    out.source = cfg.source
    return out


def demo_config(out: str | Path, small: bool | None = None, path: Path = DEMO_YAML) -> PipelineConfig:
    if not path.is_file():
        raise BookmixError(f"{path}: the demo pipeline is missing (run `bookmix demo` from a bookmix checkout)")
    cfg = load_pipeline(path)
    cfg.campaign.out = Path(out).resolve()
    if small is None:
        import torch

        small = not torch.cuda.is_available()
    return cfg if small else gpu_sized(cfg)


def run_demo(out: str | Path = "demo-out", small: bool | None = None, show_progress: bool = True) -> CampaignSummary:
    """Generate, ingest, run the demo campaign into ``out``; resumable like any campaign."""
    return run_campaign(demo_config(out, small), show_progress=show_progress)
