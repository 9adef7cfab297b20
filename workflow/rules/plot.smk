rule plot:
    input:
        notebook=notebook("04_plot"),
        tables=rules.evaluate.output.summary,
        per_model=rules.evaluate.output.per_model,
        curves=lambda wildcards: all_curves(),
    output:
        png=report(f"{FIGURES}/accuracy.png", caption="../report/accuracy_figure.rst", category="2. Result"),
        svg=f"{FIGURES}/accuracy.svg",
        curves=report(f"{FIGURES}/learning_curves.png", caption="../report/learning_curves.rst", category="2. Result"),
        curves_svg=f"{FIGURES}/learning_curves.svg",
        html=report(layout.notebook_html("plot"), caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "plot", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards: nb_params(tables_dir=TABLES, figure=f"{FIGURES}/accuracy", curves=all_curves(),
                                       curves_figure=f"{FIGURES}/learning_curves"),
    log:
        **job_logs("plot"),
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
