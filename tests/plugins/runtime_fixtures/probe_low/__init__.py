"""The probe plugin again, at a lower priority."""
