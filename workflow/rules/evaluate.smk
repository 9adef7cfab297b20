rule evaluate:
    input:
        notebook=notebook("03_evaluate"),
        data=rules.generate.output.data,
        models=all_models(),
    output:
        table1=report(f"{TABLES}/table1.csv", caption="../report/table1.rst", category="2. Result"),
        summary=report(f"{TABLES}/accuracy.csv", caption="../report/accuracy_table.rst", category="2. Result"),
        per_model=report(f"{TABLES}/accuracy_by_model.csv", caption="../report/accuracy_by_model.rst",
                         category="2. Result"),
        html=report(layout.notebook_html("evaluate"), caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "evaluate", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards, input: nb_params(data_dir=layout.DATA, models=list(input.models), tables_dir=TABLES,
                                              split="test", lexicon=PIPELINE.reading["lexicon"]),
    log:
        **job_logs("evaluate"),
    threads: 1
    priority: 2  # the Table 1 chain is the longest path: start it before the studies
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
