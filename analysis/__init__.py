"""Statistics over stored runs (see issue: analysis)."""
