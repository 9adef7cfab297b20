rule plot:
    input:
        notebook=notebook("04_plot"),
        tables=rules.evaluate.output.summary,
        per_model=rules.evaluate.output.per_model,
    output:
        png=report(f"{RESULTS}/figures/accuracy.png", caption="../report/accuracy_figure.rst", category="2. Result"),
        svg=f"{RESULTS}/figures/accuracy.svg",
        html=report(f"{RESULTS}/notebooks/plot.html", caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "plot", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards: nb_params(tables_dir=f"{RESULTS}/tables", figure=f"{RESULTS}/figures/accuracy"),
    log:
        notebook=f"{RESULTS}/logs/plot.ipynb",
        stdout=f"{RESULTS}/logs/plot.log",
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
