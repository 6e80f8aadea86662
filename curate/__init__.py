"""curate: data curation for LLM pretraining corpora, on Ray."""

__version__ = "0.1.0"
