"""Background work that happens on time: rotation, deletion, expiry of imported material."""

from openkms.jobs.lifecycle import JobReport, LifecycleJobs
from openkms.jobs.runner import JobRunner

__all__ = ["JobReport", "JobRunner", "LifecycleJobs"]
