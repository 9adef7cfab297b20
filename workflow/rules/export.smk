rule spookybench_export:
    input:
        notebook=notebook("06_spookybench_export"),
        models=all_models(),
    output:
        table1=report(f"{TABLES}/spookybench_export_table1.csv", caption="../report/export_table1.rst",
                      category="2. Result"),
        per_model=f"{TABLES}/spookybench_export_by_model.csv",
        folder=directory(layout.EXPORT),
        html=report(layout.notebook_html("spookybench_export"), caption="../report/notebook.rst",
                    category="4. Notebooks", labels={"step": "spookybench_export", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards, input: nb_params(data=PIPELINE.data, shift=PIPELINE.export["shift"], out_dir=layout.EXPORT,
                                              models=list(input.models), tables_dir=TABLES,
                                              seed=PIPELINE.export["seed"], test_size=PIPELINE.export["test_size"],
                                              scale=PIPELINE.export["scale"], frames=PIPELINE.export["frames"],
                                              fps=PIPELINE.export["fps"], lexicon=PIPELINE.reading["lexicon"]),
    log:
        **job_logs("spookybench_export"),
    threads: 1
    priority: 3  # the longest job once Table 1's models exist: first, while the rest share the other core
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
