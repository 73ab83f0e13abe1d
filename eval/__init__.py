"""The Evaluation Gauntlet on llm-foundry's ICL evaluators: task selection, data checks,
category and core averages (with missing tasks reported), and the evaluation run itself."""
