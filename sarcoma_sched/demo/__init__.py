"""The README's demonstration: a synthetic cohort through both trials, end to end."""
