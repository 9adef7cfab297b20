"""Planning: the pipeline config checked into one typed PipelineConfig, and the study and grounding
plans the Snakefile expands into jobs. Nothing here loads torch, Lightning or MLflow, so the DAG
plans in a blink."""
