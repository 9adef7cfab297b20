rule snr:
    input:
        notebook=notebook("05_snr"),
        data=rules.generate.output.data,
    output:
        per_clip=f"{RESULTS}/tables/snr.csv",
        summary=report(f"{RESULTS}/tables/snr_summary.csv", caption="../report/snr.rst", category="1. Stimuli"),
        html=report(f"{RESULTS}/notebooks/snr.html", caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "snr", "encoder": "-", "seed": "-"}),
    params:
        nb=lambda wildcards, threads: nb_params(source=DATA_DIR, table=f"{RESULTS}/tables/snr.csv", split="val",
                                                per_category=32, workers=threads),
    log:
        notebook=f"{RESULTS}/logs/snr.ipynb",
        stdout=f"{RESULTS}/logs/snr.log",
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
