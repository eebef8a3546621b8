"""A plugin for testing the runtime: every phase, driven by its config."""
