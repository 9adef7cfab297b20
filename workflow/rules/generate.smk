rule generate:
    input:
        notebook=notebook("01_generate"),
        tracking=rules.init_tracking.output,
    output:
        data=directory(layout.DATA),
        preview=report(f"{FIGURES}/stimuli.png", caption="../report/stimuli.rst", category="1. Stimuli"),
        animations=report(directory(f"{FIGURES}/stimuli_animations"), patterns=["{name}.gif"],
                          caption="../report/animation.rst", category="1. Stimuli"),
        html=report(layout.notebook_html("generate"), caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "generate", "encoder": "-", "seed": "-"}),
    params:
        nb=lambda wildcards, threads: nb_params(out_dir=layout.DATA, preview=f"{FIGURES}/stimuli", workers=threads,
                                                **data_params(PIPELINE.data)),
    log:
        **job_logs("generate"),
    threads: 2  # its workers: everything downstream waits for it
    priority: 3  # the root of the Table 1 chain, the longest path
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
