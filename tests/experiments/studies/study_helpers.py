"""What the study tests and their fixtures share."""

VIA_CLI = "bn-vs-dropout"
"""The study run through the command line, with two workers and a storage URL of its own."""
