"""Compatibility layers that let extensions written for other web UIs run on ours (see a1111/)."""
