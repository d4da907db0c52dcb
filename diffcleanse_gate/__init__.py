"""diffcleanse-gate: find and remove trained-in backdoors in diffusion models, as a CI gate."""

__version__ = "0.1.0"
