"""The Textual front end: imports Textual; reads engine records, computes nothing."""
