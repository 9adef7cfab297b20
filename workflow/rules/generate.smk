rule generate:
    input:
        notebook=notebook("01_generate"),
        tracking=rules.init_tracking.output,
    output:
        manifest=f"{DATA_DIR}/manifest.json",
        data=multiext(f"{DATA_DIR}/", *[f"{s}_{k}.npy" for s in ("train", "val", "test") for k in ("clips", "labels")]),
        preview=report(f"{RESULTS}/figures/stimuli.png", caption="../report/stimuli.rst", category="1. Stimuli"),
        html=report(f"{RESULTS}/notebooks/generate.html", caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "generate", "encoder": "-", "seed": "-"}),
    params:
        nb=lambda wildcards: nb_params(out_dir=DATA_DIR, preview=f"{RESULTS}/figures/stimuli", **config["data"]),
    log:
        notebook=f"{RESULTS}/logs/generate.ipynb",
        stdout=f"{RESULTS}/logs/generate.log",
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
