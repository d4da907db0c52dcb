"""Backdoor removal: channel saliency, pruning by masking, repair, fidelity, and export of the cleaned model."""
