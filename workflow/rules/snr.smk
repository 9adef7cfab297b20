rule snr:
    input:
        notebook=notebook("05_snr"),
        data=rules.generate.output.data,
    output:
        per_clip=f"{TABLES}/snr.csv",
        summary=report(f"{TABLES}/snr_summary.csv", caption="../report/snr.rst", category="1. Stimuli"),
        html=report(layout.notebook_html("snr"), caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "snr", "encoder": "-", "seed": "-"}),
    params:
        nb=lambda wildcards, threads: nb_params(source=layout.DATA, table=f"{TABLES}/snr.csv", split="val",
                                                per_category=32, workers=threads),
    log:
        **job_logs("snr"),
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
