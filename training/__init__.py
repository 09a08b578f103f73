"""Sequenced intermediate-task training sweeps (see issue: training)."""
