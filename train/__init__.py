"""Training on llm-foundry: model zoo, data prep to MDS, run configs, the run-record callback."""
