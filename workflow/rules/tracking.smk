rule init_tracking:
    # Creates the MLflow store and experiment once, before jobs fan out: parallel first-time
    # schema migrations on one SQLite file race each other.
    output:
        f"{RESULTS}/tracking.json",
    log:
        f"{RESULTS}/logs/init_tracking.log",
    shell:
        "python -m timeblind init-tracking --results-dir {RESULTS} --output {output} > {log} 2>&1"
