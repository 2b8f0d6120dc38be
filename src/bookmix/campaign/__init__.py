"""Campaigns: one pipeline YAML runs design → training → evaluation → analysis → report, resumably.

    from bookmix.config import load_pipeline
    from bookmix.campaign import run_campaign, campaign_status
    summary = run_campaign(load_pipeline("examples/demo.yaml"))      # or: bookmix run examples/demo.yaml
    campaign_status(summary.campaign_dir)["trials"]                  # counts by state

Files, in the order a run uses them: ``spec`` (TrialSpec/TrialResult, deterministic trial ids), ``store`` (the SQLite
results database, one writer), ``lock`` (one driver per campaign), ``plan`` (recipes × seeds + replicates),
``designs`` (recipes from the recipes room and the analysis), ``worker`` (one unit of work: train — from scratch,
from a Hugging Face base, or packed — then evaluate),
``executors`` (base, local subprocesses, Ray), ``retention`` (weights of the top-k), ``trackers``, ``progress``,
``runner`` (the stages, the dialogue layer among them), ``status`` and ``export`` (reading a campaign), ``demo``.
"""

from bookmix.campaign.export import export_axolotl, export_results
from bookmix.campaign.runner import CampaignSummary, run_campaign
from bookmix.campaign.spec import TrialResult, TrialSpec, trial_id
from bookmix.campaign.status import campaign_status, results_table
from bookmix.campaign.store import Store

__all__ = [
    "CampaignSummary",
    "Store",
    "TrialResult",
    "TrialSpec",
    "campaign_status",
    "export_axolotl",
    "export_results",
    "results_table",
    "run_campaign",
    "trial_id",
]
