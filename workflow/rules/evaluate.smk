rule evaluate:
    input:
        notebook=notebook("03_evaluate"),
        data=rules.generate.output.data,
        models=all_models(),
    output:
        table1=report(f"{RESULTS}/tables/table1.csv", caption="../report/table1.rst", category="2. Result"),
        summary=report(f"{RESULTS}/tables/accuracy.csv", caption="../report/accuracy_table.rst", category="2. Result"),
        per_model=report(f"{RESULTS}/tables/accuracy_by_model.csv", caption="../report/accuracy_by_model.rst",
                         category="2. Result"),
        html=report(f"{RESULTS}/notebooks/evaluate.html", caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "evaluate", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards, input: nb_params(data_dir=DATA_DIR, models=list(input.models),
                                              tables_dir=f"{RESULTS}/tables", split="test"),
    log:
        notebook=f"{RESULTS}/logs/evaluate.ipynb",
        stdout=f"{RESULTS}/logs/evaluate.log",
    threads: 1
    priority: 1  # the Table 1 chain is the longest path: start it before the studies
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
