rule init_tracking:
    # Creates the MLflow store and experiment once, before jobs fan out: parallel first-time
    # schema migrations on one SQLite file race each other.
    output:
        layout.TRACKING,
    params:
        results_dir=lambda wildcards, output: Path(output[0]).parent,
    log:
        layout.job_log("init_tracking", ".log"),
    conda:
        "../../envs/timeblind.yaml"
    shell:
        "python -m timeblind init-tracking --results-dir {params.results_dir} --output {output} > {log} 2>&1"
