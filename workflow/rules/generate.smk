rule generate:
    input:
        notebook=notebook("01_generate"),
        tracking=rules.init_tracking.output,
    output:
        data=directory(DATA_DIR),
        preview=report(f"{RESULTS}/figures/stimuli.png", caption="../report/stimuli.rst", category="1. Stimuli"),
        animations=report(directory(f"{RESULTS}/figures/stimuli_animations"), patterns=["{name}.gif"],
                          caption="../report/animation.rst", category="1. Stimuli"),
        html=report(f"{RESULTS}/notebooks/generate.html", caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "generate", "encoder": "-", "seed": "-"}),
    params:
        nb=lambda wildcards, threads: nb_params(
            out_dir=DATA_DIR, preview=f"{RESULTS}/figures/stimuli", workers=threads, seed=config["data"]["seed"],
            **{f"{split}_size": config["data"][f"{split}_size"] for split in ("train", "val", "test")},
            stimulus={k: v for k, v in config["data"].items() if k != "seed" and not k.endswith("_size")},
        ),
    log:
        notebook=f"{RESULTS}/logs/generate.ipynb",
        stdout=f"{RESULTS}/logs/generate.log",
    threads: 1
    priority: 1  # the Table 1 chain is the longest path: start it before the studies
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
