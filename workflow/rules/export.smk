rule spookybench_export:
    input:
        notebook=notebook("06_spookybench_export"),
        models=all_models(),
    output:
        table1=report(f"{RESULTS}/tables/spookybench_export_table1.csv", caption="../report/export_table1.rst",
                      category="2. Result"),
        per_model=f"{RESULTS}/tables/spookybench_export_by_model.csv",
        folder=directory(f"{RESULTS}/data/spookybench_export"),
        html=report(f"{RESULTS}/notebooks/spookybench_export.html", caption="../report/notebook.rst",
                    category="4. Notebooks", labels={"step": "spookybench_export", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards, input: nb_params(data=config["data"], shift=config["export"]["shift"],
                                              out_dir=f"{RESULTS}/data/spookybench_export", models=list(input.models),
                                              tables_dir=f"{RESULTS}/tables", seed=config["export"]["seed"],
                                              test_size=config["export"]["test_size"], scale=config["export"]["scale"]),
    log:
        notebook=f"{RESULTS}/logs/spookybench_export.ipynb",
        stdout=f"{RESULTS}/logs/spookybench_export.log",
    threads: 1
    priority: 1  # the Table 1 chain is the longest path: start it before the studies
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
