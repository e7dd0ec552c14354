"""Embedders for long-term memory: the offline numpy default, Cohere, provider config."""
